"""System-prompt preset routes (registered before the instance routes, so ``presets`` is
never taken for an instance id).

    GET    /api/instances/presets            built-in and user presets
    POST   /api/instances/presets            add a user preset
    DELETE /api/instances/presets/{name}     remove a user preset (409 for a built-in one)
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from modelyard.api.bodies import JsonRoute
from modelyard.api.errors import AUTH, responses
from modelyard.api.state import AdminCaller, PresetsDep
from modelyard.profiles.presets import Preset, PresetBody

router = APIRouter(
    prefix="/api/instances/presets", tags=["presets"], responses=AUTH, route_class=JsonRoute
)


@router.get("", response_model=list[Preset])
async def list_presets(presets: PresetsDep, _: AdminCaller) -> list[Preset]:
    """Built-in presets (``concise``, ``researcher``, ``coder``), then the user's by name."""
    return await asyncio.to_thread(presets.all)


@router.post("", response_model=Preset, status_code=201, responses=responses(400, 409))
async def add_preset(body: PresetBody, presets: PresetsDep, caller: AdminCaller) -> Preset:
    """Add a preset. 409 when the name is taken."""
    return await asyncio.to_thread(presets.add, body, actor=caller.name)


@router.delete("/{name}", status_code=204, responses=responses(404, 409))
async def remove_preset(name: str, presets: PresetsDep, caller: AdminCaller) -> Response:
    """Remove a user preset. 404 if unknown, 409 for a built-in one."""
    await asyncio.to_thread(presets.remove, name, actor=caller.name)
    return Response(status_code=204)
