"""`modelyard audit`: the audit log, read from the store directly."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from modelyard.cli.context import console, services
from modelyard.store.audit import read_audit


def audit(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    actor: Annotated[str | None, typer.Option("--actor")] = None,
    action: Annotated[str | None, typer.Option("--action", help="An action or its prefix.")] = None,
    target: Annotated[str | None, typer.Option("--target")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Changes, newest first: who, what, old and new values, when."""
    with services(ctx) as built:
        entries = read_audit(built.store, limit=limit, actor=actor, action=action, target=target)
    if as_json:
        console.print_json(json.dumps([asdict(e) for e in entries]))
        return
    table = Table()
    for column in ("at", "actor", "action", "target", "old", "new"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(e.at, e.actor, e.action, e.target, _short(e.old), _short(e.new))
    console.print(table)


def _short(value: object) -> str:
    text = "" if value is None else json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)
