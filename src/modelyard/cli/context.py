"""What every command needs: the settings chosen by the global options, and the services."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console

from modelyard.services import Services, build_services
from modelyard.settings import Settings, load_settings


@dataclass(frozen=True)
class CliState:
    config: Path | None
    data_dir: Path | None

    def settings(self) -> Settings:
        return load_settings(self.config, data_dir=self.data_dir)


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
