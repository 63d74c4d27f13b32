"""The ``audit`` table read back: every change, who made it, the old and new values, and when.

Entries are written by ``Store.audit`` inside the transaction of the change they record.
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
