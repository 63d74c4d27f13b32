"""What every command needs: the settings chosen by the global options, and the services."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console

from modelyard.api.auth import LOCAL, identify
from modelyard.errors import Forbidden, Unauthorized
from modelyard.services import Services, build_services
from modelyard.settings import Settings, load_settings, with_flags


@dataclass(frozen=True)
class CliState:
    """The global options. ``url`` (``--url``) wins over ``MODELYARD_URL``."""

    config: Path | None
    data_dir: Path | None
    url: str | None = None

    def settings(self) -> Settings:
        settings = load_settings(self.config, data_dir=self.data_dir)
        return with_flags(settings, data_dir=self.data_dir, url=self.url)


# Piped output (a file, `less`, a CI log) would otherwise be cut to 80 columns and fold ids.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    obj = root.obj
    assert isinstance(obj, CliState)
    return obj


@contextmanager
def services(ctx: typer.Context) -> Iterator[Services]:
    built = build_services(state(ctx).settings())
    try:
        yield built
    finally:
        built.close()


def actor(settings: Settings) -> str:
    """Who a change the CLI makes on the store is recorded as: the name the manager would
    record for the same caller (the admin key's name for ``api_key``, else ``local``), so the
    audit log names one person one way whether a manager ran or not."""
    try:
        return identify(settings, settings.api_key).name
    except (Unauthorized, Forbidden):
        return LOCAL
