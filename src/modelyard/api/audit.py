"""The audit log: every change, who made it, the old and new values, and when.

GET /api/audit?limit=&actor=&action=&target=&before_id=
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from modelyard.api.state import AdminCaller, StoreDep
from modelyard.store import Store

router = APIRouter(prefix="/api/audit", tags=["audit"])


class AuditEntry(BaseModel):
    id: int
    at: str
    actor: str
    action: str
    target: str
    old: Any = None
    new: Any = None


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_before_id: int | None  # pass as before_id for the next (older) page


def read_audit(
    store: Store,
    *,
    limit: int = 100,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    before_id: int | None = None,
) -> list[AuditEntry]:
    """Newest first. ``action`` matches a prefix (``profile`` finds ``profile.activate``)."""
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
        AuditEntry(
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


@router.get("", response_model=AuditPage)
async def audit(
    store: StoreDep,
    _: AdminCaller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> AuditPage:
    """Changes, newest first, filtered by actor, action (or its prefix) and target."""
    entries = await asyncio.to_thread(
        lambda: read_audit(
            store, limit=limit, actor=actor, action=action, target=target, before_id=before_id
        )
    )
    more = len(entries) == limit and entries[-1].id > 1
    return AuditPage(entries=entries, next_before_id=entries[-1].id if more else None)
