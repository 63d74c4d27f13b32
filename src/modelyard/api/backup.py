"""Backup of what the user set in the catalog: overrides and imported curated entries.

POST /api/models/export     the document
POST /api/models/import     replace everything in it; a bad document changes nothing
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel

from modelyard.api.state import AdminCaller, CatalogDep

router = APIRouter(prefix="/api/models", tags=["backup"])


class ExportOut(BaseModel):
    format: str
    version: int
    overrides: dict[str, dict[str, Any]]
    curated: list[dict[str, Any]]


class ImportOut(BaseModel):
    imported: bool
    overrides: int
    curated: int


@router.post("/export", response_model=ExportOut)
async def export(catalog: CatalogDep, _: AdminCaller) -> ExportOut:
    """Overrides and imported curated entries as one JSON document ``/import`` accepts."""
    return ExportOut.model_validate(await asyncio.to_thread(catalog.export))


@router.post("/import", response_model=ImportOut)
async def import_(
    catalog: CatalogDep,
    caller: AdminCaller,
    body: Annotated[dict[str, Any], Body()],
) -> ImportOut:
    """Replace every override and imported curated entry with the document's. Everything is
    checked first: a bad document is refused (400 naming what is wrong) and changes nothing.
    The catalog publishes ``catalog.changed`` when anything changed."""
    await asyncio.to_thread(catalog.import_, body, actor=caller.name)
    overrides = body.get("overrides")
    curated = body.get("curated")
    return ImportOut(
        imported=True,
        overrides=len(overrides) if isinstance(overrides, dict) else 0,
        curated=len(curated) if isinstance(curated, list) else 0,
    )
