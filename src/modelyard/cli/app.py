"""The typer app: global options, command groups, and the one place errors become one line."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from modelyard import __version__
from modelyard.cli.context import CliState, err_console
from modelyard.errors import ConfigError, ModelyardError
from modelyard.settings import debug_enabled

# Each command's module, in the order help lists them. A module is imported when one of its
# commands runs (or help lists them all), so `serve` does not carry what the other commands
# need (httpx, rich tables and progress bars): that is resident memory of the server.
_COMMANDS = {
    "scan": "scan",
    "serve": "serve",
    "stats": "stats",
    "recommend": "advice",
    "compat": "advice",
    "audit": "audit",
    "models": "models",
    "instances": "instances",
    "profiles": "profiles",
    "presets": "presets",
}


class _LazyGroup(TyperGroup):
    """The root group: commands are built from their module on first use.

    Its methods take typer's click context and commands. Typer now vendors click (the
    private ``typer._click``, which it says is no API and will change), so those are not the
    ``click`` package's classes, and they have no public name: hence ``Any`` below rather
    than an import from a private module. With a typer still on ``click`` this works as well.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            self.commands.update(_group_of(_COMMANDS[cmd_name]).commands)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in _COMMANDS:  # an unknown name: load all to suggest one
            for name in _COMMANDS:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)


def _group_of(module_name: str) -> TyperGroup:
    """A group holding the commands of ``modelyard.cli.<module_name>``: what its ``register``
    adds, or its ``app`` as a group of that name."""
    module = importlib.import_module(f"modelyard.cli.{module_name}")
    holder = typer.Typer()
    if hasattr(module, "register"):
        module.register(holder)
    else:
        holder.add_typer(module.app, name=module_name)
    return typer.main.get_group(holder)


app = typer.Typer(
    name="modelyard",
    cls=_LazyGroup,
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
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="The running manager to talk to (default: MODELYARD_URL, else the one "
            "`modelyard serve` wrote in the data folder, else server.host:port).",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.obj = CliState(config=config, data_dir=data_dir, url=url)


def _say(label: str, message: str) -> None:
    """One line on stderr: never wrapped, and ``[...]`` in the message is not read as markup."""
    err_console.print(f"[red]{label}:[/red] ", end="", soft_wrap=True)
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)


def main() -> None:
    """Entry point: known errors are one line on stderr and a non-zero exit.

    ``MODELYARD_DEBUG=1`` lets the traceback through instead.
    """
    debug = debug_enabled()
    try:
        app()
    except ModelyardError as exc:
        if debug:
            raise
        _say("error", exc.message)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
    except Exception as exc:  # a bug: still one line unless debugging
        if debug:
            raise
        _say(
            "internal error",
            f"{type(exc).__name__}: {exc} (run with MODELYARD_DEBUG=1 for the traceback)",
        )
        sys.exit(70)
