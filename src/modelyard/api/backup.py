"""Backup of what the user set in the catalog: overrides and imported curated entries.

POST /api/models/export     the document
POST /api/models/import     replace everything in it; a bad document changes nothing
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from modelyard.api.bodies import STRICT, JsonRoute
from modelyard.api.catalog import DisplayName, Roles
from modelyard.api.errors import AUTH, responses
from modelyard.api.state import AdminCaller, CatalogDep
from modelyard.settings import CuratedModel, Tier

router = APIRouter(prefix="/api/models", tags=["backup"], responses=AUTH, route_class=JsonRoute)


class OverridesIn(BaseModel):
    """One model's overrides, as ``catalog.overrides`` checks them."""

    model_config = STRICT

    tier: Tier | None = None
    thinking: bool | None = None
    enabled: bool | None = None
    display_name: DisplayName | None = None
    roles: Roles | None = None


class CuratedIn(CuratedModel):
    """A curated entry as in the config file, strict (``"0"`` is not a number, ``0`` not
    ``false``); ``path`` is a string in JSON."""

    model_config = ConfigDict(frozen=True, **STRICT)

    path: Path | None = Field(None, strict=False)


class ImportBody(BaseModel):
    """A document ``/export`` wrote (``catalog.transfer``: format and version are fixed)."""

    model_config = STRICT

    format: Literal["modelyard.catalog"]
    version: Literal[1]
    overrides: dict[str, OverridesIn] = Field(default_factory=dict, description="by model id")
    curated: list[CuratedIn] = Field(default_factory=list)


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


@router.post("/import", response_model=ImportOut, responses=responses(400))
async def import_(catalog: CatalogDep, caller: AdminCaller, body: ImportBody) -> ImportOut:
    """Replace every override and imported curated entry with the document's. Everything is
    checked first: a bad document is refused (400 naming what is wrong; ``invalid_reference``
    for a curated entry that differs from the config file or comes twice) and changes nothing.
    The catalog publishes ``catalog.changed`` when anything changed."""
    document = body.model_dump(mode="json", exclude_unset=True)
    await asyncio.to_thread(catalog.import_, document, actor=caller.name)
    return ImportOut(imported=True, overrides=len(body.overrides), curated=len(body.curated))
