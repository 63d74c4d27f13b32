"""`modelyard presets list`: the system-prompt presets an instance can take (``instances
create --preset``, ``instances set --preset``): the built-in ones, then the user's.

Read from the running manager when one answers, else from the store, like the instance
commands (``modelyard.cli.control``).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from modelyard.cli.context import console
from modelyard.cli.control import instance_control

app = typer.Typer(help="The system-prompt presets for instances.", no_args_is_help=True)

PROMPT_EXCERPT = 60


@app.command("list")
def list_presets(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
) -> None:
    """Every preset: name, where it comes from, title and the start of its prompt."""
    with instance_control(ctx) as control:
        presets = control.presets()
    if as_json:
        sys.stdout.write(json.dumps(presets, indent=2) + "\n")
        return
    table = Table()
    table.add_column("name", no_wrap=True)
    for column in ("source", "title", "prompt"):
        table.add_column(column, overflow="fold")
    for preset in presets:
        prompt = " ".join(preset["prompt"].split())
        if len(prompt) > PROMPT_EXCERPT:
            prompt = prompt[: PROMPT_EXCERPT - 1] + "…"
        table.add_row(Text(preset["name"]), preset["source"], Text(preset["title"]), Text(prompt))
    console.print(table)
