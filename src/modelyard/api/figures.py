"""Running servers and the gateway's figures.

GET /api/models/servers       total, ready, and per instance: id, model, port, pid, ready,
                              running, uptime, memory
GET /api/models/statistics    per-model and per-instance request figures
"""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from modelyard.api.errors import AUTH, responses
from modelyard.api.state import AdminCaller, FiguresDep, FleetDep, ServicesDep
from modelyard.fleet.instance import InstanceView
from modelyard.fleet.memory import MemoryInventory
from modelyard.profiles.deployment import PROFILES, hardware_of

router = APIRouter(prefix="/api/models", tags=["figures"], responses=AUTH)


class ServerOut(BaseModel):
    id: str
    model_id: str
    display_name: str | None
    port: int
    pid: int | None
    state: str
    ready: bool
    running: bool
    uptime_s: float | None
    in_flight: int
    memory_estimate_bytes: int
    memory_measured_bytes: int | None
    memory_device: int | None
    error: str | None


class DeviceOut(BaseModel):
    """One memory pool: system RAM (``index`` None) or a GPU, and what instances hold of it."""

    index: int | None
    name: str
    total_bytes: int
    budget_bytes: int
    free_bytes: int
    used_bytes: int
    used_by_instances_bytes: int
    origin: str


class ServersOut(BaseModel):
    total: int
    ready: int
    running: int
    servers: list[ServerOut]
    devices: list[DeviceOut]


class Stats(BaseModel):
    requests: int
    successes: int
    errors: int
    cancelled: int
    success_rate: float | None
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    tokens_in: int
    tokens_out: int
    tokens_per_s: float | None
    last_request_at: float | None


class ModelStats(Stats):
    instances: dict[str, Stats] = Field(default_factory=dict)


class StatisticsOut(BaseModel):
    total: Stats
    models: dict[str, ModelStats]
    pending: int
    dropped: int


def server_out(view: InstanceView) -> ServerOut:
    return ServerOut(
        id=view.id,
        model_id=view.model_id,
        display_name=view.config.display_name,
        port=view.port,
        pid=view.pid,
        state=view.state,
        ready=view.state == "ready",
        running=view.state in ("starting", "ready", "stopping", "sleeping"),  # a process is there
        uptime_s=view.uptime_s,
        in_flight=view.in_flight,
        memory_estimate_bytes=view.memory_estimate,
        memory_measured_bytes=view.memory_measured,
        memory_device=view.memory_device,
        error=view.error,
    )


def devices_out(inventory: MemoryInventory, servers: list[ServerOut]) -> list[DeviceOut]:
    """RAM and each GPU, with the estimates of the running instances placed on it."""

    def used(index: int | None) -> int:
        return sum(
            s.memory_estimate_bytes for s in servers if s.running and s.memory_device == index
        )

    pools = [
        DeviceOut(
            index=None,
            name="RAM",
            total_bytes=inventory.ram_total_bytes,
            budget_bytes=inventory.budget(None),
            free_bytes=inventory.ram_available_bytes,
            used_bytes=inventory.ram_total_bytes - inventory.ram_available_bytes,
            used_by_instances_bytes=used(None),
            origin=inventory.ram_origin,
        )
    ]
    pools += [
        DeviceOut(
            index=d.index,
            name=d.name,
            total_bytes=d.total_bytes,
            budget_bytes=inventory.budget(d.index),
            free_bytes=d.free_bytes,
            used_bytes=d.total_bytes - d.free_bytes,
            used_by_instances_bytes=used(d.index),
            origin=d.origin,
        )
        for d in inventory.devices
    ]
    return pools


@router.get("/servers", response_model=ServersOut)
async def servers(fleet: FleetDep, services: ServicesDep, _: AdminCaller) -> ServersOut:
    """Every instance's server, ready or not, and the memory pools they use."""
    out = [server_out(v) for v in fleet.instances()]
    inventory = await fleet.memory.inventory()
    return ServersOut(
        total=len(out),
        ready=sum(1 for s in out if s.ready),
        running=sum(1 for s in out if s.running),
        servers=out,
        devices=devices_out(inventory, out),
    )


@router.get("/statistics", response_model=StatisticsOut)
async def statistics(figures: FiguresDep, _: AdminCaller) -> StatisticsOut:
    """The gateway's in-memory figures since start (totals loaded from the store)."""
    return StatisticsOut.model_validate(figures.snapshot())


class Bucket(BaseModel):
    start: float
    requests: int
    successes: int
    success_rate: float | None
    ttft_p50_s: float | None
    tokens_per_s: float | None


class HistoryOut(BaseModel):
    model_id: str | None
    bucket_s: float
    buckets: list[Bucket]


@router.get("/statistics/history", response_model=HistoryOut, responses=responses(400))
async def statistics_history(
    figures: FiguresDep,
    _: AdminCaller,
    model_id: str | None = None,
    since: float | None = Query(None, ge=0, description="unix time; default 24 hours ago"),
    bucket_s: float = Query(60.0, ge=1, le=86400, description="seconds; at least 1"),
) -> HistoryOut:
    """Stored requests in time buckets, oldest first, for one model or all (the usage charts)."""
    buckets = await asyncio.to_thread(figures.history, model_id, since, bucket_s)
    return HistoryOut(
        model_id=model_id, bucket_s=bucket_s, buckets=[Bucket.model_validate(b) for b in buckets]
    )


class DeploymentProfileOut(BaseModel):
    name: str
    gpus: int
    gpu_bytes: int
    max_models_loaded: int | None
    ctx: int
    parallel: int
    description: str
    fits: bool


class DeploymentOut(BaseModel):
    device: Literal["gpu", "cpu"]
    memory_budget_bytes: int
    max_models_loaded: int
    reasons: list[str]
    source: Literal["suggested", "config", "profile"]
    profile: str | None
    # Added with the named deployment profiles (issue 14):
    name: str | None = Field(description="the deployment profile; null: none fits")
    device_budgets: list[int] = Field(description="budget per GPU (RAM on a CPU deployment)")
    ctx: int
    parallel: int
    enforced: bool = Field(description="whether admission enforces these limits")
    profiles: list[DeploymentProfileOut]


@router.get("/deployment", response_model=DeploymentOut)
async def deployment(services: ServicesDep, _: AdminCaller) -> DeploymentOut:
    """The deployment profile picked from the hardware (or set by the config or the active
    profile), its budgets and limits (enforced when an instance starts), and every named
    profile with whether it fits this machine."""

    inventory = await services.fleet.memory.inventory()

    def resolve() -> DeploymentOut:
        hardware = hardware_of(
            inventory.ram_total_bytes,
            [d.total_bytes for d in inventory.devices],
            inventory.reserve_bytes,
        )
        found, active = services.profiles.active_deployment(hardware)
        named = [DeploymentProfileOut(**p.to_dict(), fits=p.fits(hardware)) for p in PROFILES]
        return DeploymentOut(
            **found.to_dict(),
            profile=active,
            enforced=services.fleet.memory.enforced,
            profiles=named,
        )

    return await asyncio.to_thread(resolve)
