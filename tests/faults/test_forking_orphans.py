"""Issue 10, item 4: orphans from servers that fork.

A ``command`` line wrapped in ``sh -c`` (or any server that starts workers) runs the real
server as a grandchild of the manager. ``PR_SET_PDEATHSIG`` kills only the direct child when
the manager dies, so the grandchild lived on, holding the instance's port; the next start
looked for the recorded leader only, found it gone, and moved the instance to another port.
These tests run the manager as a real subprocess (``tests/fleet/manager_script.py``), kill -9
it, count what survives, start a new manager over the same store and count again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.gateway.harness import FAKE_BACKEND, gateway_settings, running
from tests.support.processes import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
MANAGER = ROOT / "tests" / "fleet" / "manager_script.py"
READY_TIMEOUT_S = 60.0


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _kill_all(processes: list[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()


@dataclass
class Manager:
    """One manager subprocess and the JSON line it printed once its instance was ready."""

    process: subprocess.Popen[str]
    report: dict[str, int]

    def tree(self) -> list[psutil.Process]:
        """Everything the manager started, as it stands now."""
        return psutil.Process(self.process.pid).children(recursive=True)

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


@contextlib.contextmanager
def manager(data: Path, port_range: tuple[int, int], kind: str) -> Iterator[Manager]:
    """Run ``manager_script.py`` until its instance is ready; kill -9 it (and whatever it
    started) when the block ends, if the test did not."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    args = [sys.executable, str(MANAGER), str(data), *map(str, port_range), kind]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, cwd=ROOT, env=env, text=True)
    started: list[psutil.Process] = []
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the script exits on failure: EOF, never a hang
        assert line, f"the manager exited with {process.wait(timeout=10)} before printing"
        report = json.loads(line)
        assert "pid" in report, report
        running_manager = Manager(process, report)
        started = running_manager.tree()
        yield running_manager
    finally:
        if process.poll() is None:
            started += Manager(process, {}).tree()
            process.kill()
            process.wait(timeout=10)
        _kill_all(started)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.parametrize("kind", ["sh-fork", "setsid-fork"])
async def test_nothing_a_forking_server_started_survives_the_next_start(
    tmp_path: Path, kind: str
) -> None:
    """Prevents the grandchild of a ``sh -c '... & wait'`` server (and one that also called
    setsid, leaving the group and the session) from outliving a kill -9 of the manager and
    the next start: it kept the instance's port, so the instance moved to another one and the
    old server ran on unmanaged."""
    low = min(free_port(), 65435)
    port_range = (low, low + 99)
    data = tmp_path / "data"
    orphans: list[psutil.Process] = []
    try:
        with manager(data, port_range, kind) as first:
            tree = first.tree()
            leader = psutil.Process(first.report["pid"])
            assert leader in tree and len(tree) == 2, tree  # sh and the fake it forked
            first.kill9()
            await wait_for(lambda: not _alive(leader), 10, "the leader's parent-death signal")
            orphans = [p for p in tree if _alive(p)]
            # the fault: the fake outlives its manager, holding the port
            assert len(orphans) == 1, orphans
            assert orphans[0].ppid() != first.process.pid
        with manager(data, port_range, kind) as second:
            survivors = [p for p in orphans if _alive(p)]
            assert survivors == [], f"still running after the next start: {survivors}"
            assert second.report["port"] == first.report["port"]
            assert second.report["pid"] != first.report["pid"]
    finally:
        _kill_all(orphans)


async def test_a_stop_leaves_nothing_of_a_server_whose_worker_left_its_session(
    tmp_path: Path,
) -> None:
    """Prevents a worker that called setsid from outliving an ordinary stop (the SIGTERM to
    the server's process group never reaches it): it kept the port, so the next start of
    the instance had to move."""
    line = f"sh -c '{sys.executable} {FAKE_BACKEND} --port ${{PORT}} --setsid & wait'"
    curated = [{"id": "forky", "engine": "command", "command": line, "tier": "fast"}]
    settings = gateway_settings(tmp_path, curated=curated)
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        await gw.services.fleet.create("forky", actor="test")
        started = await client.post("/api/instances/forky:01/start")
        assert started.status_code == 200, started.text
        view = gw.services.fleet.get("forky:01")
        assert view.pid is not None
        [worker] = psutil.Process(view.pid).children(recursive=True)
        assert os.getsid(worker.pid) == worker.pid  # it left the server's session
        try:
            stopped = await client.post("/api/instances/forky:01/stop")
            assert stopped.status_code == 200, stopped.text
            assert not _alive(worker), "the worker outlived the stop"
            again = await client.post("/api/instances/forky:01/start")
            assert again.status_code == 200, again.text
            assert gw.services.fleet.get("forky:01").port == view.port
        finally:
            _kill_all([worker])
