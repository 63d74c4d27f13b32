"""The typer app: global options, command groups, and the one place errors become one line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from modelyard import __version__
from modelyard.cli.context import CliState, err_console
from modelyard.errors import ConfigError, ModelyardError

app = typer.Typer(
    name="modelyard",
    help="A local LLM model manager and OpenAI-compatible gateway.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"modelyard {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML config file (default: MODELYARD_CONFIG or "
            "~/.config/modelyard/modelyard.yaml).",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Data folder (default: MODELYARD_DATA_DIR or ~/.local/share/modelyard).",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.obj = CliState(config=config, data_dir=data_dir)


def _register() -> None:
    from modelyard.cli import advice, audit, instances, models, profiles, scan, serve, stats

    scan.register(app)
    serve.register(app)
    stats.register(app)
    app.add_typer(models.app, name="models")
    app.add_typer(instances.app, name="instances")
    app.add_typer(profiles.app, name="profiles")
    advice.register(app)
    audit.register(app)


_register()


def _say(label: str, message: str) -> None:
    """One line on stderr: never wrapped, and ``[...]`` in the message is not read as markup."""
    err_console.print(f"[red]{label}:[/red] ", end="", soft_wrap=True)
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)


def main() -> None:
    """Entry point: known errors are one line on stderr and a non-zero exit.

    ``MODELYARD_DEBUG=1`` lets the traceback through instead.
    """
    try:
        app()
    except ModelyardError as exc:
        if os.environ.get("MODELYARD_DEBUG") == "1":
            raise
        _say("error", exc.message)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
    except Exception as exc:  # a bug: still one line unless debugging
        if os.environ.get("MODELYARD_DEBUG") == "1":
            raise
        _say(
            "internal error",
            f"{type(exc).__name__}: {exc} (run with MODELYARD_DEBUG=1 for the traceback)",
        )
        sys.exit(70)
