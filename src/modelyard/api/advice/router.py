"""Advice routes.

POST /api/models/recommend               {memory_gb, priority} -> the best model, with reasons
POST /api/models/check_compatibility     {model, ctx} -> fits? estimate, what would stop
GET  /v1/models/select_by_role?role=     the model a role picks (admin or inference key)
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from modelyard.api.advice import serving
from modelyard.api.advice.protocol import (
    CompatibilityBody,
    CompatibilityOut,
    RecommendBody,
    RecommendOut,
    RoleOut,
)
from modelyard.api.bodies import JsonRoute
from modelyard.api.errors import AUTH, responses
from modelyard.api.state import AdminCaller, AnyCaller, ServicesDep
from modelyard.catalog.overrides import ROLE_NAME_PATTERN

router = APIRouter(tags=["advice"], route_class=JsonRoute)


@router.post(
    "/api/models/recommend", response_model=RecommendOut, responses={**AUTH, **responses(400)}
)
async def recommend(body: RecommendBody, services: ServicesDep, _: AdminCaller) -> RecommendOut:
    """The best enabled or installed model for the memory and priority, with reasons."""
    models = await asyncio.to_thread(services.catalog.models)
    return serving.recommend(services, models, body.memory_gb, body.priority)


@router.post(
    "/api/models/check_compatibility",
    response_model=CompatibilityOut,
    responses={**AUTH, **responses(400, 404)},
)
async def check_compatibility(
    body: CompatibilityBody, services: ServicesDep, _: AdminCaller
) -> CompatibilityOut:
    """Would one more instance of the model at this context fit now, and if not, which idle
    instances would have to stop. 404 for an unknown model."""
    model = await asyncio.to_thread(services.catalog.get, body.model)
    inventory = await services.fleet.memory.inventory()
    limits = await services.fleet.memory.limits(inventory)
    views = services.fleet.instances()
    return serving.compatibility(services, model, body.ctx, views, inventory, limits)


# On /v1: errors in OpenAI's shape (with ``src``), and an inference key is let in (no 403).
@router.get("/v1/models/select_by_role", response_model=RoleOut, responses=responses(400, 401, 404))
async def select_by_role(
    services: ServicesDep,
    _: AnyCaller,
    role: Annotated[str, Query(pattern=ROLE_NAME_PATTERN, description="e.g. code")],
) -> RoleOut:
    """The model chosen for ``role``: the active profile's ``defaults.roles`` first, else the
    enabled model with the highest priority for it. 404 when none has the role."""

    def choose() -> RoleOut:
        models = services.catalog.models()
        pinned = None
        active = services.profiles.active_name()
        if active is not None:
            entry = services.profiles.read(active)
            if entry.profile is not None:
                pinned = entry.profile.defaults.roles.get(role)
        return serving.select_by_role(services, models, role, pinned)

    return await asyncio.to_thread(choose)
