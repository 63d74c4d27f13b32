"""Readiness, failure and supervision of one instance, over the fake backend."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time

import pytest

from modelyard.errors import StartFailed
from modelyard.fleet.fleet import Fleet
from modelyard.settings import Settings
from tests.fleet.conftest import FleetFactory
from tests.support.processes import wait_for


def _pid(fleet: Fleet, ident: str) -> int:
    pid = fleet.get(ident).pid
    assert pid is not None
    return pid


async def test_start_answers_and_stop_reaps(make_fleet: FleetFactory) -> None:
    fleet = await make_fleet({"fake": "--ready-after 0.2"})
    (view,) = await fleet.create("fake", {"display_name": "<i>Reviewer</i>"})
    assert view.id == "fake:01" and view.config.display_name == "Reviewer"
    ready = await fleet.start_instance("fake:01")
    assert ready.state == "ready" and ready.pid is not None
    assert ready.memory_measured and ready.memory_measured > 0
    pid = ready.pid
    stopped = await fleet.stop_instance("fake:01")
    assert stopped.state == "stopped" and stopped.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert any("ready on" in line for line in fleet.logs("fake:01"))


async def test_never_ready_fails_after_the_start_timeout(
    make_fleet: FleetFactory, fleet_settings: Settings
) -> None:
    """A server that never answers health 200 ends in error at the timeout, not before."""
    quick = fleet_settings.fleet.model_copy(update={"start_timeout_s": 1.0})
    settings = fleet_settings.model_copy(update={"fleet": quick})
    fleet = await make_fleet({"fake": "--never-ready"}, settings=settings)
    await fleet.create("fake")
    started = time.monotonic()
    with pytest.raises(StartFailed, match="not ready after 1s"):
        await fleet.start_instance("fake:01")
    assert 1.0 <= time.monotonic() - started < 5.0
    view = fleet.get("fake:01")
    assert view.state == "error" and view.pid is None


async def test_exit_during_start_is_an_error_at_once(make_fleet: FleetFactory) -> None:
    """Regression: an exit while starting must fail the start now, not at the start timeout."""
    fleet = await make_fleet({"fake": "--never-ready --die-after 0.2"})
    await fleet.create("fake")
    started = time.monotonic()
    with pytest.raises(StartFailed, match="exited with code 3 while starting") as info:
        await fleet.start_instance("fake:01")
    assert time.monotonic() - started < 3.0  # start_timeout_s is 10
    assert "dying after 0.2s" in str(info.value)  # the last log lines come with it


async def test_missing_command_binary_is_a_clear_error(make_fleet: FleetFactory) -> None:
    from modelyard.engines.command import CommandLine

    fleet = await make_fleet({"gone": CommandLine("/nonexistent/server --port ${PORT}")})
    await fleet.create("gone")
    with pytest.raises(StartFailed, match="cannot run /nonexistent/server"):
        await fleet.start_instance("gone:01")


async def test_crash_loop_restarts_with_backoff_then_error(make_fleet: FleetFactory) -> None:
    fleet = await make_fleet({"fake": "--die-after 0.3"})
    await fleet.create("fake")
    await fleet.start_instance("fake:01")
    await wait_for(lambda: fleet.get("fake:01").state == "error", 20, "the restart limit")
    view = fleet.get("fake:01")
    assert view.restarts == 3  # restart_limit
    assert view.error is not None and "exited with code 3" in view.error


async def test_killed_server_is_restarted(make_fleet: FleetFactory) -> None:
    fleet = await make_fleet({"fake": ""})
    await fleet.create("fake")
    await fleet.start_instance("fake:01")
    first = _pid(fleet, "fake:01")
    os.kill(first, signal.SIGKILL)

    def restarted() -> bool:
        view = fleet.get("fake:01")
        return view.state == "ready" and view.pid not in (None, first)

    await wait_for(restarted, 10, "a restart after kill -9")
    assert fleet.get("fake:01").restarts == 1


async def test_wedged_server_is_restarted(make_fleet: FleetFactory) -> None:
    """A server alive but no longer answering health is killed and started again."""
    fleet = await make_fleet({"fake": "--wedge-after 0.3"})
    await fleet.create("fake")
    first = (await fleet.start_instance("fake:01")).pid

    def restarted() -> bool:
        view = fleet.get("fake:01")
        return view.restarts >= 1 and view.state == "ready" and view.pid != first

    await wait_for(restarted, 10, "a restart of the wedged server")
    assert any("stopped answering health checks" in line for line in fleet.logs("fake:01"))


async def test_ignored_sigterm_is_killed_after_the_stop_timeout(make_fleet: FleetFactory) -> None:
    fleet = await make_fleet({"fake": "--ignore-sigterm"})
    await fleet.create("fake")
    pid = (await fleet.start_instance("fake:01")).pid
    assert pid is not None
    started = time.monotonic()
    await fleet.stop_instance("fake:01")
    assert 2.0 <= time.monotonic() - started < 6.0  # stop_timeout_s is 2
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_instances_are_independent(make_fleet: FleetFactory) -> None:
    """Two of three failing leaves the third serving."""
    fleet = await make_fleet({"bad": "--die-after 0.2", "good": ""})
    await fleet.create("bad", count=2)
    await fleet.create("good")
    await fleet.start_instance("good:01")
    results = await asyncio.gather(
        fleet.start_instance("bad:01"), fleet.start_instance("bad:02"), return_exceptions=True
    )
    assert all(isinstance(r, StartFailed) or getattr(r, "state", None) == "ready" for r in results)
    await wait_for(
        lambda: all(fleet.get(i).state == "error" for i in ("bad:01", "bad:02")), 20, "errors"
    )
    assert fleet.get("good:01").state == "ready"


async def test_taken_port_is_skipped_at_create_and_at_start(make_fleet: FleetFactory) -> None:
    fleet = await make_fleet({"fake": ""})
    low = fleet._settings.fleet.port_range[0]
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", low))
        blocker.listen()
        (view,) = await fleet.create("fake")
        assert view.port != low
    taken = view.port
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", taken))
        blocker.listen()
        ready = await fleet.start_instance("fake:01")
    assert ready.port != taken and ready.state == "ready"
    row = fleet.configs.store.query("SELECT port FROM instances WHERE id = 'fake:01'")
    assert row[0]["port"] == ready.port
