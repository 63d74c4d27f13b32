"""max_models_loaded enforced by admission, over fake backends through the command engine."""

from __future__ import annotations

import pytest

from modelyard.errors import InsufficientMemory, ModelLimitReached
from modelyard.fleet.fleet import Fleet
from modelyard.fleet.memory import MemoryInventory, read_inventory
from modelyard.profiles.deployment import Override, hardware_of, resolve
from modelyard.routing.eviction import AdmissionLimits
from modelyard.settings import MemorySettings
from tests.fleet.conftest import FleetFactory

GIB = 1024**3
MEMORY = MemorySettings(ram_bytes=64 * GIB, gpus=[], reserve_bytes=0)


def two_models(inventory: MemoryInventory) -> AdmissionLimits:
    """The deployment as the config ``deployment: {max_models_loaded: 2}`` resolves it."""
    hardware = hardware_of(inventory.ram_total_bytes, [], inventory.reserve_bytes)
    return resolve(hardware, Override(max_models_loaded=2)).limits()


async def governed(make_fleet: FleetFactory) -> Fleet:
    fleet = await make_fleet(
        {"a": "", "b": "", "c": ""},
        memory_bytes=GIB,
        inventory=lambda: read_inventory(MEMORY),
    )

    def model_of(ident: str) -> str | None:
        record = fleet.configs.find(ident)
        return record.model_id if record is not None else None

    fleet.memory.govern(two_models, model_of)
    for model in ("a", "b", "c"):
        await fleet.create(model)
    return fleet


async def test_a_third_model_evicts_the_least_recently_used_idle_one(
    make_fleet: FleetFactory,
) -> None:
    """Prevents max_models_loaded being advisory: with two models loaded and room in memory
    for ten, starting a third must stop the least recently used idle model first."""
    fleet = await governed(make_fleet)
    await fleet.start_instance("a:01")
    await fleet.start_instance("b:01")
    async with fleet.lease("a:01"):
        pass  # a used after b: b is the least recently used
    await fleet.start_instance("c:01")
    states = {i: fleet.get(i).state for i in ("a:01", "b:01", "c:01")}
    assert states == {"a:01": "ready", "b:01": "stopped", "c:01": "ready"}
    assert any("stopped to free memory" in line for line in fleet.logs("b:01", 100))


async def test_a_second_instance_of_a_loaded_model_needs_no_slot(make_fleet: FleetFactory) -> None:
    """Prevents counting instances instead of models: a second instance of a loaded model
    must not unload the other model."""
    fleet = await governed(make_fleet)
    await fleet.create("a")
    for ident in ("a:01", "b:01", "a:02"):
        await fleet.start_instance(ident)
    assert {i: fleet.get(i).state for i in ("a:01", "a:02", "b:01")} == {
        "a:01": "ready",
        "a:02": "ready",
        "b:01": "ready",
    }


async def test_refused_with_a_readable_reason_when_both_are_busy_or_pinned(
    make_fleet: FleetFactory,
) -> None:
    """Prevents a start over the limit either evicting a busy or pinned model or failing
    without saying why: it is refused, naming the models and what keeps each."""
    fleet = await governed(make_fleet)
    await fleet.start_instance("a:01")
    await fleet.start_instance("b:01")
    await fleet.update("a:01", {"pinned": True})
    async with fleet.lease("b:01"):
        with pytest.raises(ModelLimitReached) as info:
            await fleet.start_instance("c:01")
    assert isinstance(info.value, InsufficientMemory)  # callers of the old error still catch it
    message = str(info.value)
    assert "max_models_loaded=2" in message
    assert "a (pinned)" in message and "b (1 in flight)" in message
    assert fleet.get("a:01").state == fleet.get("b:01").state == "ready"
    assert fleet.get("c:01").state == "error"
