"""``/api/instances``: list, create, change, delete, start, stop, restart, health, logs.

Thin: each route calls one Fleet method; errors are ModelyardError, rendered by the app.
Every route needs an admin caller (see ``modelyard.api.auth``).

Changes to one instance are serialised by the fleet (``InstanceConfigs``) so two at once both
land; a change sent with ``If-Match: <version>`` (the ETag of ``GET /api/instances/{id}``)
lands only if the settings are still at that version, else 409. The fleet publishes the
``instance.*`` events itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from modelyard.api.auth import Caller, identify, presented_key
from modelyard.api.bodies import STRICT, JsonRoute
from modelyard.api.errors import AUTH, responses
from modelyard.api.state import PresetsDep, services_of
from modelyard.fleet.fleet import Fleet
from modelyard.fleet.instance import MAX_DISPLAY_NAME, MAX_SYSTEM_PROMPT, InstanceView

router = APIRouter(
    prefix="/api/instances", tags=["instances"], responses=AUTH, route_class=JsonRoute
)

_FOLLOW_INTERVAL_S = 0.2


def admin(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Caller:
    """The caller; raises Unauthorized or Forbidden when keys are configured."""
    return identify(services_of(request).settings, presented_key(authorization, x_api_key))


def fleet_of(request: Request) -> Fleet:
    return services_of(request).fleet


AdminCaller = Annotated[Caller, Depends(admin)]
FleetDep = Annotated[Fleet, Depends(fleet_of)]


class EngineArgsIn(BaseModel):
    """Arguments for the engine, applied at the next start (null: the engine's default)."""

    model_config = STRICT

    ctx: int | None = Field(None, ge=1)
    gpu_layers: int | None = None
    parallel: int | None = Field(None, ge=1)
    threads: int | None = Field(None, ge=1)
    cache_type: str | None = None
    extra_args: list[str] = Field(default_factory=list)


class InstanceSettings(BaseModel):
    """An instance's settings (``fleet.instance.clean_config`` checks them again); a change
    sets only the keys it names. Names are cleaned of tags and runs of spaces."""

    model_config = STRICT

    display_name: str | None = Field(None, max_length=MAX_DISPLAY_NAME)
    system_prompt: str | None = Field(None, max_length=MAX_SYSTEM_PROMPT)
    web_search: bool = False
    on_demand: bool = False
    idle_ttl: float | None = Field(None, gt=0, description="seconds")
    pinned: bool = False
    autostart: bool = False
    engine_args: EngineArgsIn = Field(default_factory=EngineArgsIn)


def _given(settings: InstanceSettings) -> dict[str, Any]:
    return settings.model_dump(exclude_unset=True)


class CreateInstances(BaseModel):
    """``count`` instances of ``model``. ``preset`` fills ``config.system_prompt`` when the
    config does not set one."""

    model_config = STRICT

    model: str = Field(min_length=1)
    count: int = Field(1, ge=1, le=99)
    config: InstanceSettings = Field(default_factory=InstanceSettings)
    preset: str | None = None


class InstanceOut(BaseModel):
    """One instance (``InstanceView``): settings, state, process, memory."""

    model_config = ConfigDict(extra="allow")

    id: str
    model_id: str
    number: int
    state: str
    error: str | None
    port: int
    pid: int | None
    uptime_s: float | None
    in_flight: int
    config: dict[str, Any]
    memory_estimate: int
    memory_measured: int | None
    restarts: int
    desired: str


class HealthOut(BaseModel):
    id: str
    state: str
    ready: bool
    desired: str
    error: str | None
    pid: int | None
    port: int
    uptime_s: float | None
    restarts: int
    in_flight: int


class LogsOut(BaseModel):
    id: str
    lines: list[str]


_CREATE = responses(400, 404, 409, 503)
_CHANGE = responses(400, 404, 409)
# A start can fail (503: no program, no port, did not become ready) or not fit (507); an
# engine argument the engine refuses (a duplicate flag) is a 400 from the start.
_START = responses(400, 404, 503, 507)


def _out(view: InstanceView) -> InstanceOut:
    return InstanceOut.model_validate(view.to_dict())


@router.get("", response_model=list[InstanceOut])
async def list_instances(fleet: FleetDep, caller: AdminCaller) -> list[InstanceOut]:
    return [_out(view) for view in fleet.instances()]


@router.post("", status_code=201, response_model=list[InstanceOut], responses=_CREATE)
async def create_instances(
    body: CreateInstances,
    fleet: FleetDep,
    presets: PresetsDep,
    caller: AdminCaller,
) -> list[InstanceOut]:
    """Create instances (stopped). 404 unknown model or preset, 400 bad settings, 409 when the
    model would have more than 99."""
    config = _given(body.config)
    if body.preset is not None:
        preset = await asyncio.to_thread(presets.get, body.preset)
        config.setdefault("system_prompt", preset.prompt)
    views = await fleet.create(body.model, config, count=body.count, actor=caller.name)
    return [_out(view) for view in views]


@router.get("/{instance_id}", response_model=InstanceOut, responses=responses(404))
async def get_instance(
    instance_id: str, fleet: FleetDep, caller: AdminCaller, response: Response
) -> InstanceOut:
    view = fleet.get(instance_id)
    response.headers["ETag"] = f'"{view.version}"'
    return _out(view)


async def _update(
    instance_id: str,
    changes: InstanceSettings,
    fleet: Fleet,
    actor: str,
    if_match: str | None,
    response: Response,
) -> InstanceOut:
    expected = (if_match or "").strip().removeprefix("W/").strip('"')
    updated = await fleet.update(
        instance_id,
        _given(changes),
        actor=actor,
        expected_version=expected if expected and expected != "*" else None,
    )
    response.headers["ETag"] = f'"{updated.version}"'
    return _out(updated)


@router.put("/{instance_id}", response_model=InstanceOut, responses=_CHANGE)
async def replace_settings(
    instance_id: str,
    changes: InstanceSettings,
    fleet: FleetDep,
    caller: AdminCaller,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> InstanceOut:
    """Change settings (display_name, system_prompt, web_search, on_demand, idle_ttl, pinned,
    autostart, engine_args); keys left out keep their value. Engine arguments apply at the
    next start. 400 names a bad field; 409 when If-Match is stale."""
    return await _update(instance_id, changes, fleet, caller.name, if_match, response)


@router.patch("/{instance_id}", response_model=InstanceOut, responses=_CHANGE)
async def update_instance(
    instance_id: str,
    changes: InstanceSettings,
    fleet: FleetDep,
    caller: AdminCaller,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> InstanceOut:
    """The same as PUT."""
    return await _update(instance_id, changes, fleet, caller.name, if_match, response)


@router.delete("/{instance_id}", status_code=204, responses=responses(404, 503))
async def delete_instance(instance_id: str, fleet: FleetDep, caller: AdminCaller) -> Response:
    """Stop (blocks until stopped) and forget the instance."""
    await fleet.delete(instance_id, actor=caller.name)
    return Response(status_code=204)


@router.post("/{instance_id}/start", response_model=InstanceOut, responses=_START)
async def start_instance(instance_id: str, fleet: FleetDep, caller: AdminCaller) -> InstanceOut:
    """Start and block until ready (or 503/507 saying why not)."""
    return _out(await fleet.start_instance(instance_id, actor=caller.name))


@router.post("/{instance_id}/stop", response_model=InstanceOut, responses=responses(404, 503))
async def stop_instance(instance_id: str, fleet: FleetDep, caller: AdminCaller) -> InstanceOut:
    """Stop and block until stopped."""
    return _out(await fleet.stop_instance(instance_id, actor=caller.name))


@router.post("/{instance_id}/restart", response_model=InstanceOut, responses=_START)
async def restart_instance(instance_id: str, fleet: FleetDep, caller: AdminCaller) -> InstanceOut:
    """Stop, then start with the current settings; blocks until ready."""
    return _out(await fleet.restart_instance(instance_id, actor=caller.name))


@router.get("/{instance_id}/health", response_model=HealthOut, responses=responses(404))
async def instance_health(instance_id: str, fleet: FleetDep, caller: AdminCaller) -> HealthOut:
    """The fleet's view of the instance's health (it polls the server itself)."""
    view = fleet.get(instance_id)
    return HealthOut(
        id=view.id,
        state=view.state,
        ready=view.state == "ready",
        desired=view.desired,
        error=view.error,
        pid=view.pid,
        port=view.port,
        uptime_s=view.uptime_s,
        restarts=view.restarts,
        in_flight=view.in_flight,
    )


@router.get(
    "/{instance_id}/logs",
    response_model=None,
    responses={
        **responses(400, 404),
        200: {
            "content": {
                "application/json": {"schema": LogsOut.model_json_schema()},
                "text/plain": {"schema": {"type": "string"}},
            }
        },
    },
)
async def instance_logs(
    instance_id: str,
    fleet: FleetDep,
    caller: AdminCaller,
    lines: Annotated[int, Query(ge=1, le=10_000)] = 200,
    follow: bool = False,
) -> dict[str, Any] | StreamingResponse:
    """The last ``lines``; with ``follow``, a text stream of the log file as it grows."""
    tail = fleet.logs(instance_id, lines)
    if not follow:
        return {"id": instance_id, "lines": tail}
    path = Path(fleet.log_file(instance_id))
    return StreamingResponse(_follow(path, tail), media_type="text/plain; charset=utf-8")


async def _follow(path: Path, tail: list[str]) -> AsyncIterator[bytes]:
    """The tail, then what is appended to ``path``; a rotated file is read from its start.
    Ends when the client goes away (the server cancels the generator)."""
    if tail:
        yield ("\n".join(tail) + "\n").encode()
    _, offset = await asyncio.to_thread(_read_from, path, None)
    while True:
        await asyncio.sleep(_FOLLOW_INTERVAL_S)
        data, offset = await asyncio.to_thread(_read_from, path, offset)
        if data:
            yield data


def _read_from(path: Path, offset: int | None) -> tuple[bytes, int]:
    """Bytes appended since ``offset`` (None: none, just the size) and the new offset."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return b"", 0
    if offset is None:
        return b"", size
    if size < offset:
        offset = 0
    if size == offset:
        return b"", offset
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(size - offset), size
