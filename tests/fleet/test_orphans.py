"""No orphans: a kill -9 of the manager leaves no server; SIGTERM of `modelyard serve` stops
every instance cleanly. Both run the manager as a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.fleet.conftest import FAKE_BACKEND

MANAGER = Path(__file__).with_name("manager_script.py")
ROOT = Path(__file__).resolve().parents[2]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"server {pid} still running {timeout}s after its manager died")
        time.sleep(0.01)


def run_manager_and_kill(
    tmp_path: Path, port_range: tuple[int, int], kind: str, model: str = ""
) -> None:
    """Start the manager script, read its server's pid, kill -9 the manager, expect no server."""
    args = [sys.executable, str(MANAGER), str(tmp_path / "data"), *map(str, port_range), kind]
    manager = subprocess.Popen(
        [*args, *([model] if model else [])],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},
        text=True,
    )
    try:
        assert manager.stdout is not None
        line = manager.stdout.readline()  # the manager exits on failure: EOF, never a hang
        assert line, f"the manager exited with {manager.wait(timeout=10)} before printing"
        report = json.loads(line)
        assert "pid" in report, report
        server = psutil.Process(report["pid"])
        assert server.ppid() == manager.pid
        manager.send_signal(signal.SIGKILL)
        manager.wait(timeout=10)
        wait_gone(report["pid"], 10)
    finally:
        if manager.poll() is None:
            manager.kill()
            manager.wait(timeout=10)
        if manager.stdout is not None:
            manager.stdout.close()


def test_kill9_of_the_manager_leaves_no_fake_server(
    tmp_path: Path, port_range: tuple[int, int]
) -> None:
    run_manager_and_kill(tmp_path, port_range, "fake")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from modelyard.cli.app import main; main()", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_sigterm_of_serve_stops_its_instances(tmp_path: Path, port_range: tuple[int, int]) -> None:
    port = _free_port()
    config = tmp_path / "modelyard.yaml"
    command = f"{sys.executable} {FAKE_BACKEND} --port ${{PORT}}"
    config.write_text(
        json.dumps(
            {
                "discovery": {"default_model": False, "hf": False, "ollama": False},
                "fleet": {"port_range": list(port_range)},
                "server": {"port": port},
                "curated": [{"id": "fake", "engine": "command", "command": command}],
            }
        )
    )
    env = {**os.environ, "MODELYARD_CONFIG": str(config)}
    created = _cli(env, "instances", "create", "fake", "--count", "2")
    assert created.returncode == 0, created.stderr
    refused = _cli(env, "instances", "start", "fake:01")
    assert refused.returncode == 1
    assert " ".join(refused.stderr.split()) == (  # one line, wrapped by the console at 80
        f"error: no modelyard serve is running at http://127.0.0.1:{port}; "
        "start one with `modelyard serve`"
    )
    serve = subprocess.Popen(
        [sys.executable, "-c", "from modelyard.cli.app import main; main()", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert serve.poll() is None, f"serve exited: {serve.communicate()[1]}"
            try:
                httpx.get(f"{base}/api/instances", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "serve never answered"
                time.sleep(0.02)
        started = _cli(env, "instances", "start", "fake:01")
        assert started.returncode == 0, started.stderr
        assert "fake:01: ready" in started.stdout
        httpx.post(f"{base}/api/instances/fake:02/start", timeout=30).raise_for_status()
        listed = httpx.get(f"{base}/api/instances", timeout=10).json()
        pids = [view["pid"] for view in listed]
        assert all(pids) and len(pids) == 2
        serve.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught
        assert serve.wait(timeout=20) in (0, -signal.SIGTERM)
        for pid in pids:
            assert _gone(pid), f"server {pid} outlived serve"
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait(timeout=10)
        if serve.stderr is not None:
            serve.stderr.close()
