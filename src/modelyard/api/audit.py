"""The audit log: every change, who made it, the old and new values, and when.

GET /api/audit?limit=&actor=&action=&target=&before_id=
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from modelyard.api.errors import AUTH, responses
from modelyard.api.state import AdminCaller, StoreDep
from modelyard.store.audit import read_audit

router = APIRouter(prefix="/api/audit", tags=["audit"], responses=AUTH)


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


@router.get("", response_model=AuditPage, responses=responses(400))
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
    rows = await asyncio.to_thread(
        lambda: read_audit(
            store, limit=limit, actor=actor, action=action, target=target, before_id=before_id
        )
    )
    entries = [AuditEntry(**asdict(row)) for row in rows]
    more = len(entries) == limit and entries[-1].id > 1
    return AuditPage(entries=entries, next_before_id=entries[-1].id if more else None)
