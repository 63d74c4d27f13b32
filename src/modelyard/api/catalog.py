"""Catalog routes: the registry, tiers, rescans and the user's overrides.

    GET    /api/models/registry
    GET    /api/models/tiers/{tier}
    POST   /api/models/rescan
    PUT    /api/models/{id}/tier | thinking | enabled | display_name | roles
    DELETE /api/models/{id}/overrides/{field}

Overrides are merged field by field inside one BEGIN IMMEDIATE transaction, so two changes to
one model at once both land. The logic lives in ``Catalog``, which also publishes
``catalog.changed`` for each change; these routes only translate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from modelyard.api.bodies import STRICT, JsonRoute, OnlyNamedKeys
from modelyard.api.errors import AUTH, responses
from modelyard.api.state import AdminCaller, CatalogDep, EventsDep
from modelyard.catalog.catalog import ScanProgress
from modelyard.catalog.model import Model
from modelyard.catalog.overrides import DISPLAY_NAME_PATTERN, MAX_DISPLAY_NAME, ROLE_NAME_PATTERN
from modelyard.events import EventBus
from modelyard.settings import Tier

router = APIRouter(prefix="/api/models", tags=["catalog"], responses=AUTH, route_class=JsonRoute)

OverrideField = Literal["tier", "thinking", "enabled", "display_name", "roles"]

# What catalog.overrides checks, said in the schema.
DisplayName = Annotated[
    str, StringConstraints(max_length=MAX_DISPLAY_NAME, pattern=DISPLAY_NAME_PATTERN)
]
RoleName = Annotated[str, StringConstraints(pattern=ROLE_NAME_PATTERN)]
Roles = Annotated[dict[RoleName, Annotated[int, Field(ge=0, le=100)]], OnlyNamedKeys()]


class ModelOut(BaseModel):
    """One catalog entry, overrides applied (every field of ``Model`` but the template)."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    source: str
    engine: str
    path: str | None = None
    size_bytes: int = 0
    family: str | None = None
    parameters_b: float | None = None
    quantization: str | None = None
    context_length: int | None = None
    tier: Tier | None = None
    tier_overridden: bool = False
    thinking: bool = False
    thinking_overridden: bool = False
    coder: bool = False
    vision: bool = False
    enabled: bool = True
    display_name: str | None = None
    roles: dict[str, int] = Field(default_factory=dict)
    memory_bytes: int | None = None
    error: str | None = None


class RegistryOut(BaseModel):
    total: int
    enabled: int
    by_tier: dict[str, int]
    models: list[ModelOut]


class RescanBody(BaseModel):
    model_config = STRICT

    paths: list[str] = Field(default_factory=list, max_length=64)


class RescanOut(BaseModel):
    added: list[str]
    removed: list[str]
    changed: list[str]
    models: int
    errors: int
    files: int
    headers_read: int
    warnings: list[str]
    unchanged_inputs: bool
    duration_s: float


class TierBody(BaseModel):
    model_config = STRICT
    tier: Tier | None


class ThinkingBody(BaseModel):
    model_config = STRICT
    thinking: bool | None


class EnabledBody(BaseModel):
    model_config = STRICT
    enabled: bool | None


class DisplayNameBody(BaseModel):
    model_config = STRICT
    display_name: DisplayName | None


class RolesBody(BaseModel):
    model_config = STRICT
    roles: Roles | None = Field(
        description="role name (lower case, e.g. `code`) to priority 0-100; null clears"
    )


_CHANGE = responses(400, 404)


def model_out(model: Model) -> ModelOut:
    return ModelOut.model_validate(model.to_dict())


@router.get("/registry", response_model=RegistryOut)
async def registry(catalog: CatalogDep, _: AdminCaller) -> RegistryOut:
    """Every model in the catalog, with counts by tier."""
    models = await asyncio.to_thread(catalog.models)
    by_tier: dict[str, int] = {}
    for model in models:
        by_tier[model.tier or "none"] = by_tier.get(model.tier or "none", 0) + 1
    return RegistryOut(
        total=len(models),
        enabled=sum(1 for m in models if m.enabled),
        by_tier=by_tier,
        models=[model_out(m) for m in models],
    )


@router.get("/tiers/{tier}", response_model=list[ModelOut], responses=responses(400))
async def by_tier(tier: Tier, catalog: CatalogDep, _: AdminCaller) -> list[ModelOut]:
    """The models of one tier (``fast``, ``balanced``, ``powerful``)."""
    models = await asyncio.to_thread(catalog.models)
    return [model_out(m) for m in models if m.tier == tier]


@router.post("/rescan", response_model=RescanOut, responses=responses(400))
async def rescan(
    catalog: CatalogDep, bus: EventsDep, _: AdminCaller, body: RescanBody | None = None
) -> RescanOut:
    """Find model files again; overrides are kept. ``paths`` are scanned now and remembered.
    Progress and the result are published as ``catalog.rescan.progress`` and
    ``catalog.rescan.done`` events."""
    paths = [Path(p) for p in (body.paths if body else [])]
    report = await asyncio.to_thread(catalog.rescan, paths, _progress(bus))
    data = report.to_dict()
    bus.publish("catalog.rescan.done", data)
    return RescanOut.model_validate(data)


def _progress(bus: EventBus) -> Callable[[ScanProgress], None]:
    def report(progress: ScanProgress) -> None:
        bus.publish(
            "catalog.rescan.progress",
            {
                "files_found": progress.files_found,
                "headers_read": progress.headers_read,
                "headers_to_read": progress.headers_to_read,
            },
        )

    return report


async def _set(catalog: CatalogDep, model_id: str, **fields: Any) -> ModelOut:
    """Set overrides; the catalog announces the change (``catalog.changed``) itself."""
    model = await asyncio.to_thread(lambda: catalog.set_overrides(model_id, **fields))
    return model_out(model)


@router.put("/{model_id}/tier", response_model=ModelOut, responses=_CHANGE)
async def set_tier(
    model_id: str, body: TierBody, catalog: CatalogDep, caller: AdminCaller
) -> ModelOut:
    """Pin the model's tier (``null`` goes back to the automatic tier)."""
    return await _set(catalog, model_id, actor=caller.name, tier=body.tier)


@router.put("/{model_id}/thinking", response_model=ModelOut, responses=_CHANGE)
async def set_thinking(
    model_id: str, body: ThinkingBody, catalog: CatalogDep, caller: AdminCaller
) -> ModelOut:
    """Say whether the model thinks (``null`` goes back to detection)."""
    return await _set(catalog, model_id, actor=caller.name, thinking=body.thinking)


@router.put("/{model_id}/enabled", response_model=ModelOut, responses=_CHANGE)
async def set_enabled(
    model_id: str, body: EnabledBody, catalog: CatalogDep, caller: AdminCaller
) -> ModelOut:
    """Enable or disable the model for routing."""
    return await _set(catalog, model_id, actor=caller.name, enabled=body.enabled)


@router.put("/{model_id}/display_name", response_model=ModelOut, responses=_CHANGE)
async def set_display_name(
    model_id: str,
    body: DisplayNameBody,
    catalog: CatalogDep,
    caller: AdminCaller,
) -> ModelOut:
    """The name shown and accepted for the model (``null`` clears it)."""
    return await _set(catalog, model_id, actor=caller.name, display_name=body.display_name)


@router.put("/{model_id}/roles", response_model=ModelOut, responses=_CHANGE)
async def set_roles(
    model_id: str, body: RolesBody, catalog: CatalogDep, caller: AdminCaller
) -> ModelOut:
    """Set the overridden roles (``{"code": 80}``, priority 0-100), laid over the discovered
    ones; ``null`` clears them."""
    return await _set(catalog, model_id, actor=caller.name, roles=body.roles)


@router.delete("/{model_id}/overrides/{field}", response_model=ModelOut, responses=_CHANGE)
async def clear_override(
    model_id: str, field: OverrideField, catalog: CatalogDep, caller: AdminCaller
) -> ModelOut:
    """Forget one overridden field."""
    model = await asyncio.to_thread(catalog.clear_override, model_id, field, actor=caller.name)
    return model_out(model)
