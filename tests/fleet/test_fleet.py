"""Fleet behaviour over the fake backend: one start for many callers, idle unload races,
restore after a restart, leftover cleanup, configuration and persistence."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import psutil
import pytest

from modelyard.errors import InstanceNotFound, InsufficientMemory, StartFailed, ValidationFailed
from modelyard.fleet import spawn
from modelyard.fleet.memory import read_inventory
from modelyard.settings import MemorySettings
from tests.fleet.conftest import FAKE_BACKEND, FleetFactory
from tests.support.processes import wait_for


def _starts(lines: list[str]) -> int:
    return sum(1 for line in lines if line.startswith("[modelyard] starting:"))


async def test_fifty_concurrent_callers_cause_one_start(make_fleet: FleetFactory) -> None:
    fleet = await make_fleet({"fake": "--ready-after 0.3"})
    await fleet.create("fake")
    views = await asyncio.gather(*(fleet.ensure_ready("fake:01") for _ in range(50)))
    assert {v.pid for v in views} == {views[0].pid} and views[0].state == "ready"
    assert _starts(fleet.logs("fake:01", 1000)) == 1


async def test_ensure_ready_racing_idle_unload_never_hangs(make_fleet: FleetFactory) -> None:
    """Regression (llama-swap #946): a request arriving while its instance is being unloaded
    must wait for the stop and start it again, never hang."""
    fleet = await make_fleet({"fake": ""})
    await fleet.create("fake", {"idle_ttl": 0.05})
    for round_ in range(15):
        async with asyncio.timeout(15):
            async with fleet.lease("fake:01"):
                view = await fleet.ensure_ready("fake:01")
                assert view.state == "ready"
            # Wait for the unload to begin (or end), then ask again at once.
            await wait_for(lambda: fleet.get("fake:01").state != "ready", 10, "idle unload")
            if round_ % 3 == 0:
                await wait_for(lambda: fleet.get("fake:01").state == "stopped", 10, "stopped")
            async with fleet.lease("fake:01"):
                again = await fleet.ensure_ready("fake:01")
                assert again.state == "ready"
                assert fleet.get("fake:01").state == "ready"  # held: never unloaded


async def test_lease_keeps_an_idle_instance_loaded(make_fleet: FleetFactory) -> None:
    fleet = await make_fleet({"fake": ""})
    await fleet.create("fake", {"idle_ttl": 0.05})
    async with fleet.lease("fake:01"):
        await fleet.ensure_ready("fake:01")
        # Several idle periods pass while the lease is out; poll the view meanwhile.
        loop = asyncio.get_running_loop()
        end = loop.time() + 0.5
        while loop.time() < end:
            assert fleet.get("fake:01").state == "ready"
            await asyncio.sleep(0.02)
        assert fleet.get("fake:01").in_flight == 1
    await wait_for(lambda: fleet.get("fake:01").state == "stopped", 5, "the idle unload")


async def test_restart_of_the_manager_brings_back_what_was_running(
    make_fleet: FleetFactory,
) -> None:
    first = await make_fleet({"fake": "", "auto": ""})
    await first.create("fake", count=2)
    await first.create("auto", {"autostart": True})
    await first.start_instance("fake:02")
    await first.aclose()
    assert first.get("fake:02").desired == "running"

    second = await make_fleet({"fake": "", "auto": ""})
    await wait_for(
        lambda: second.get("fake:02").state == "ready" and second.get("auto:01").state == "ready",
        10,
        "restored instances",
    )
    assert second.get("fake:01").state == "stopped"


def _detached(port: int) -> subprocess.Popen[bytes]:
    """A fake server started outside any fleet, as a previous run would have left it."""
    return subprocess.Popen(
        [sys.executable, str(FAKE_BACKEND), "--port", str(port)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )


async def test_leftovers_are_stopped_by_pid_and_start_time(make_fleet: FleetFactory) -> None:
    """A server recorded by a crashed run is stopped; a reused pid (another creation time)
    is left alone."""
    fleet = await make_fleet({"fake": ""}, start=False)
    (view,) = await fleet.create("fake")
    leftover = _detached(view.port)
    bystander = _detached(0)
    try:
        created = spawn.create_time(leftover.pid)
        other = spawn.create_time(bystander.pid)
        assert created is not None and other is not None
        with fleet.configs.store.transaction() as conn:
            conn.executemany(
                "INSERT INTO processes (instance_id, pid, pgid, create_time, port, started_at)"
                " VALUES (?, ?, ?, ?, ?, '')",
                [
                    ("fake:01", leftover.pid, leftover.pid, created, view.port),
                    ("fake:02", bystander.pid, bystander.pid, other - 100.0, 1),
                ],
            )
        await fleet.start()
        assert leftover.wait(timeout=5) is not None
        assert bystander.poll() is None
        assert psutil.Process(bystander.pid).is_running()
        assert fleet.configs.store.query("SELECT * FROM processes") == []
    finally:
        for proc in (leftover, bystander):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


async def test_create_numbers_validation_and_delete(make_fleet: FleetFactory) -> None:
    fleet = await make_fleet({"fake": ""})
    views = await fleet.create("fake", {"system_prompt": "be\x00 brief\n\tok\x07"}, count=3)
    assert [v.id for v in views] == ["fake:01", "fake:02", "fake:03"]
    assert views[0].config.system_prompt == "be brief\n\tok"
    assert len({v.port for v in views}) == 3
    await fleet.start_instance("fake:02")
    pid = fleet.get("fake:02").pid
    await fleet.delete("fake:02")
    assert pid is not None and not spawn.same_process(pid, 0.0)
    with pytest.raises(InstanceNotFound):
        fleet.get("fake:02")
    (again,) = await fleet.create("fake")
    assert again.id == "fake:02"  # lowest free number
    with pytest.raises(ValidationFailed):
        await fleet.create("fake", {"display_name": "x" * 65})
    with pytest.raises(ValidationFailed):
        await fleet.create("fake", {"system_prompt": "x" * 4097})
    with pytest.raises(ValidationFailed):
        await fleet.update("fake:01", {"idle_ttl": -1})
    updated = await fleet.update("fake:01", {"pinned": True, "engine_args": {"ctx": 2048}})
    assert updated.config.pinned and updated.config.engine_args.ctx == 2048
    actions = [row["action"] for row in fleet.configs.store.audit_log()]
    assert "instance.update" in actions and "instance.delete" in actions


async def test_events_report_state_changes(make_fleet: FleetFactory) -> None:
    fleet = await make_fleet({"fake": ""})
    await fleet.create("fake")
    async with fleet.subscribe() as queue:
        await fleet.start_instance("fake:01")
        await fleet.stop_instance("fake:01")
        states: list[str | None] = []
        while not queue.empty():
            event = queue.get_nowait()
            if event.kind == "state" and (not states or states[-1] != event.state):
                states.append(event.state)
    assert states == ["starting", "ready", "stopping", "stopped"]


async def test_stop_during_start_fails_the_waiters(make_fleet: FleetFactory) -> None:
    fleet = await make_fleet({"fake": "--never-ready"})
    await fleet.create("fake")
    waiting = asyncio.ensure_future(fleet.ensure_ready("fake:01"))
    await wait_for(lambda: fleet.get("fake:01").pid is not None, 5, "the spawn")
    await fleet.stop_instance("fake:01")
    with pytest.raises(StartFailed, match="stopped before it was ready"):
        await waiting
    assert fleet.get("fake:01").state == "stopped"


async def test_admission_evicts_idle_lru_then_refuses(make_fleet: FleetFactory) -> None:
    """Memory set by hand: 1000 MiB, 400 MiB per instance. The third start evicts the least
    recently used idle instance; with the others pinned or busy it is refused, naming them."""
    mib = 1024 * 1024
    memory = MemorySettings(ram_bytes=1000 * mib, gpus=[], reserve_bytes=0)
    fleet = await make_fleet(
        {"fake": ""}, memory_bytes=400 * mib, inventory=lambda: read_inventory(memory)
    )
    await fleet.create("fake", count=3)
    await fleet.start_instance("fake:01")
    await fleet.start_instance("fake:02")
    async with fleet.lease("fake:02"):
        pass  # fake:02 used more recently than fake:01
    await fleet.start_instance("fake:03")
    assert fleet.get("fake:01").state == "stopped"
    assert fleet.get("fake:02").state == "ready"
    await fleet.update("fake:03", {"pinned": True})
    async with fleet.lease("fake:02"):
        with pytest.raises(InsufficientMemory) as info:
            await fleet.start_instance("fake:01")
    message = str(info.value)
    assert "fake:02 400 MiB (1 in flight)" in message and "fake:03 400 MiB (pinned)" in message
    assert fleet.get("fake:01").state == "error"
