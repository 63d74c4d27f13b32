"""The fleet running the vLLM engine against the fake ``vllm`` (tests/fakes/fake_vllm.py): a
real subprocess that binds late, forks a worker, sleeps and wakes."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from modelyard.catalog.model import Model
from modelyard.engines.registry import EngineRegistry
from modelyard.engines.vllm import VllmEngine
from modelyard.fleet.fleet import Fleet, FleetEvent
from modelyard.settings import Settings
from modelyard.store import Store
from tests.support.fleets import close_fleets
from tests.support.processes import server_children, wait_for

FAKE_VLLM = Path(__file__).resolve().parents[1] / "fakes" / "fake_vllm.py"
GIB = 1024**3

VllmFleet = Callable[..., Awaitable[Fleet]]


def vllm_binary(flags: str = "") -> str:
    return f"{sys.executable} {FAKE_VLLM} {flags}".strip()


def vllm_model(tmp_path: Path, model_id: str = "qwen") -> Model:
    folder = tmp_path / model_id
    folder.mkdir(exist_ok=True)
    config = {"num_hidden_layers": 2, "num_attention_heads": 2, "hidden_size": 64}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(b"\0" * 4096)
    return Model(id=model_id, name=model_id, source="curated", engine="vllm", path=str(folder))


@pytest.fixture
async def vllm_fleet(fleet_settings: Settings, tmp_path: Path) -> AsyncIterator[VllmFleet]:
    """``await vllm_fleet(flags, models=[...])``: a started fleet whose vllm is the fake."""
    fleets: list[Fleet] = []
    stores: list[Store] = []

    async def build(
        flags: str = "", model_ids: tuple[str, ...] = ("qwen",), **vllm: object
    ) -> Fleet:
        settings = fleet_settings.model_copy(
            update={
                "vllm": fleet_settings.vllm.model_copy(
                    update={"binary": vllm_binary(flags), "overhead_bytes": GIB, **vllm}
                )
            }
        )
        store = Store.open(settings.db_path)
        stores.append(store)
        models = {mid: vllm_model(tmp_path, mid) for mid in model_ids}
        engines = EngineRegistry({"vllm": VllmEngine(settings.vllm, {0: 16 * GIB})})
        fleet = Fleet(settings, store, engines, lambda mid: models[mid])
        fleets.append(fleet)
        await fleet.start()
        return fleet

    yield build
    await close_fleets(fleets, stores)


async def test_a_server_that_binds_late_is_loading_not_failed(
    vllm_fleet: VllmFleet, tmp_path: Path
) -> None:
    """vLLM binds its port only once its engine is up: refused connections while it loads
    must read as "starting", and the start succeeds once /v1/models lists the served name."""
    args = tmp_path / "args.json"
    fleet = await vllm_fleet(f"--load-delay 0.5 --args-file {args}")
    await fleet.create("qwen")
    view = await fleet.ensure_ready("qwen:01")
    assert view.state == "ready" and view.served_name == "qwen:01"
    seen = json.loads(args.read_text())
    assert seen["env"]["VLLM_SERVER_DEV_MODE"] == "1"
    argv = seen["argv"]
    assert argv[argv.index("--served-model-name") + 1] == "qwen:01"
    assert float(argv[argv.index("--gpu-memory-utilization") + 1]) == 0.07  # (1 GiB+) / 16 GiB
    worker = [p for p in server_children() if p.ppid() == view.pid]
    assert worker, "the fake forks a worker as vLLM does"
    await fleet.stop_instance("qwen:01")
    await wait_for(lambda: not server_children(), 10, "the server and its worker to exit")


async def test_idle_unload_sleeps_and_a_request_wakes_it(vllm_fleet: VllmFleet) -> None:
    fleet = await vllm_fleet("--wake-delay 0.05")
    await fleet.create("qwen", {"idle_ttl": 0.1})
    first = await fleet.ensure_ready("qwen:01")
    await wait_for(lambda: fleet.get("qwen:01").state == "sleeping", 10, "the idle sleep")
    asleep = fleet.get("qwen:01")
    assert asleep.pid == first.pid and asleep.sleep_level in (1, 2)
    async with fleet.lease("qwen:01"):
        woken = await fleet.ensure_ready("qwen:01")
    assert woken.state == "ready" and woken.pid == first.pid  # the same process: no reload
    lines = fleet.logs("qwen:01", 200)
    assert any("sleeping (level" in line for line in lines)
    assert any(line.endswith("awake") for line in lines)


async def test_metrics_are_scraped_into_the_view(vllm_fleet: VllmFleet) -> None:
    fleet = await vllm_fleet()
    await fleet.create("qwen")
    await fleet.ensure_ready("qwen:01")
    await wait_for(lambda: fleet.get("qwen:01").load is not None, 10, "a metrics scrape")
    assert fleet.get("qwen:01").load == {"running": 0.0, "waiting": 0.0, "kv_cache_usage": 0.0}


async def test_instances_on_one_gpu_start_one_after_another(vllm_fleet: VllmFleet) -> None:
    """vLLM counts memory other processes gain while it profiles (vllm #17979, #9198): a
    second instance on the GPU must not start before the first is ready."""
    fleet = await vllm_fleet("--load-delay 0.3", model_ids=("qwen", "llama"))
    events: list[tuple[str, str | None]] = []

    def record(event: FleetEvent) -> None:
        if event.kind == "state":
            events.append((event.instance_id, event.state))

    fleet.add_listener(record)
    await fleet.create("qwen")
    await fleet.create("llama")
    await asyncio.gather(fleet.ensure_ready("qwen:01"), fleet.ensure_ready("llama:01"))

    def first(ident: str, state: str) -> int:
        return events.index((ident, state))

    ready_first, other = sorted(("qwen:01", "llama:01"), key=lambda i: first(i, "ready"))
    assert first(other, "starting") > first(ready_first, "ready"), events


async def test_sleep_instance_sleeps_only_what_can_sleep(vllm_fleet: VllmFleet) -> None:
    """Without sleep mode there is nothing to sleep: the instance stays ready (no /sleep
    call, which vLLM would refuse) instead of reading as asleep."""
    plain = await vllm_fleet(sleep_mode=False)
    await plain.create("qwen")
    await plain.start_instance("qwen:01")
    assert (await plain.sleep_instance("qwen:01")).state == "ready"
    sleepy = await vllm_fleet(model_ids=("qwen", "llama"))  # one store: qwen:01 is in it
    await sleepy.create("llama")
    await sleepy.start_instance("llama:01")
    asleep = await sleepy.sleep_instance("llama:01")
    assert asleep.state == "sleeping" and asleep.pid is not None
    assert (await sleepy.start_instance("llama:01")).state == "ready"
