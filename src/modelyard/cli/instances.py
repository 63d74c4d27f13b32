"""`modelyard instances ...`."""

from __future__ import annotations

import typer

app = typer.Typer(help="instances commands", no_args_is_help=True)
