"""The ``audit`` table read back: every change, who made it, the old and new values, and when.

Entries are written by ``Store.audit`` inside the transaction of the change they record.
``old`` and ``new`` are whole values (an instance's every setting, say); ``field_changes``
tells which fields of them changed.

Actors: the admin key's name of an /api caller, or ``local`` for a caller without a key
(the dashboard and the CLI on this machine, with a manager running or not); and the parts
that act on their own: ``gateway`` (an on-demand instance), ``fleet`` (an instance stopped
when idle or to free memory), ``startup`` (the profile activated at start), ``scan`` (a folder a
scan remembered).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from modelyard.store.db import Store


@dataclass(frozen=True)
class AuditRow:
    """One change. ``old`` and ``new`` are the JSON values stored (None when absent)."""

    id: int
    at: str
    actor: str
    action: str
    target: str
    old: Any = None
    new: Any = None


@dataclass(frozen=True)
class FieldChange:
    """One changed field. ``field`` is dotted for a nested object (``engine_args.ctx``) and
    empty for a value that is not an object; a field only one side has is None on the other."""

    field: str
    old: Any
    new: Any


def field_changes(old: Any, new: Any) -> list[FieldChange]:
    """What differs between two stored values, leaf by leaf: objects key by key in key order
    (nested objects by dotted name; a missing object, as in a creation or a removal, counts
    as empty), anything else as one change with an empty ``field``. Pure."""
    if old == new:
        return []
    if not _objects(old, new):
        return [FieldChange("", old, new)]
    before: dict[str, Any] = old or {}
    after: dict[str, Any] = new or {}
    found: list[FieldChange] = []
    for key in sorted(set(before) | set(after)):
        for change in field_changes(before.get(key), after.get(key)):
            name = f"{key}.{change.field}" if change.field else str(key)
            found.append(FieldChange(name, change.old, change.new))
    return found


def _objects(old: Any, new: Any) -> bool:
    """Both objects, or one object and one missing."""
    sides = (old, new)
    return any(isinstance(v, dict) for v in sides) and all(
        v is None or isinstance(v, dict) for v in sides
    )


def read_audit(
    store: Store,
    *,
    limit: int = 100,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    before_id: int | None = None,
) -> list[AuditRow]:
    """Newest first. ``action`` matches a prefix (``profile`` finds ``profile.activate``).

    ``before_id`` pages back: only entries older than that id. Blocks on the store.
    """
    where: list[str] = []
    params: list[Any] = []
    if actor is not None:
        where.append("actor = ?")
        params.append(actor)
    if action is not None:
        where.append("(action = ? OR action LIKE ? ESCAPE '\\')")
        escaped = action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params += [action, f"{escaped}.%"]
    if target is not None:
        where.append("target = ?")
        params.append(target)
    if before_id is not None:
        where.append("id < ?")
        params.append(before_id)
    sql = "SELECT * FROM audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = store.query(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
    return [
        AuditRow(
            id=row["id"],
            at=row["at"],
            actor=row["actor"],
            action=row["action"],
            target=row["target"],
            old=None if row["old"] is None else json.loads(row["old"]),
            new=None if row["new"] is None else json.loads(row["new"]),
        )
        for row in rows
    ]
