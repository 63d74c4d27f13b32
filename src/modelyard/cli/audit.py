"""`modelyard audit`: the audit log, from the running manager when one answers, else from the
store directly. Each entry shows what changed field by field, ``old → new``."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any
from urllib.parse import urlencode

import typer
from rich.table import Table
from rich.text import Text

from modelyard.cli.context import console, services
from modelyard.cli.manager import reachable
from modelyard.store.audit import AuditRow, FieldChange, field_changes, read_audit

VALUE_WIDTH = 40  # characters of one old or new value shown in the table


def audit(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    actor: Annotated[str | None, typer.Option("--actor")] = None,
    action: Annotated[str | None, typer.Option("--action", help="An action or its prefix.")] = None,
    target: Annotated[str | None, typer.Option("--target")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Changes, newest first: when, who, what, and each changed field old → new."""
    entries = _entries(ctx, limit=limit, actor=actor, action=action, target=target)
    if as_json:
        console.print_json(
            json.dumps(
                [
                    {**asdict(e), "changes": [asdict(c) for c in field_changes(e.old, e.new)]}
                    for e in entries
                ]
            )
        )
        return
    table = Table()
    for column in ("at", "actor", "action", "target"):
        table.add_column(column, overflow="fold")
    table.add_column("change", overflow="fold")
    for e in entries:
        change = "\n".join(change_lines(e))
        table.add_row(e.at, Text(e.actor), e.action, Text(e.target), Text(change))
    console.print(table)


def _entries(ctx: typer.Context, **filters: Any) -> list[AuditRow]:
    client = reachable(ctx)
    if client is None:
        with services(ctx) as built:
            return read_audit(built.store, **filters)
    query = urlencode({k: v for k, v in filters.items() if v is not None})
    with client:
        page = client.call("GET", f"/api/audit?{query}")
    return [AuditRow(**entry) for entry in page["entries"]]


def change_lines(entry: AuditRow) -> list[str]:
    """One line per changed field, ``field: old → new``, each value cut on its own. An object
    created or removed shows what it held, ``field: value``, leaving out unset fields."""
    changes = field_changes(entry.old, entry.new)
    if entry.old is None and isinstance(entry.new, dict):
        return [f"{c.field}: {_short(c.new)}" for c in changes if _holds(c.new)]
    if entry.new is None and isinstance(entry.old, dict):
        return [f"{c.field}: {_short(c.old)}" for c in changes if _holds(c.old)]
    return [describe(c) for c in changes]


def describe(change: FieldChange) -> str:
    """``field: old → new`` (``old → new`` for a value that is not an object)."""
    name = f"{change.field}: " if change.field else ""
    return f"{name}{_short(change.old)} → {_short(change.new)}"


def _holds(value: object) -> bool:
    return value not in (None, False, "", [], {})


def _short(value: object) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)
