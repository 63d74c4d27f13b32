"""A real ``modelyard serve`` on 127.0.0.1 and a real Chromium, for the dashboard tests.

The server runs as a subprocess in its own session with a config file under the test's temp
folder. ``stop`` sends SIGTERM, waits, SIGKILLs what is left, and reports every process of
the server's tree that outlived it, so a test can assert nothing leaked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from tests.support.processes import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium reaches out to Google's services and this machine's closed
    # network refuses its connections, which stalls page loads.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


def port_range(width: int = 40) -> tuple[int, int]:
    """A block of ports for instances, near a port the kernel just handed out as free."""
    low = min(free_port(), 65535 - width)
    return low, low + width - 1


def modelyard_binary() -> str:
    return str(Path(sys.executable).with_name("modelyard"))


@dataclass
class Server:
    """One running ``modelyard serve``. ``url`` is its base address."""

    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    log_path: Path
    admin_key: str | None = None
    tree: set[int] = field(default_factory=set)

    def client(self, timeout: float = 30.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.admin_key}"} if self.admin_key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def remember_tree(self) -> None:
        """Note every process the server has started so far (llama-server children)."""
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        self.tree.update(child.pid for child in children)


def write_config(folder: Path, **sections: Any) -> Path:
    """A config file with the dashboard tests' defaults: no HF/Ollama/folder discovery, memory
    set by hand, the bundled model discoverable, and ``sections`` merged on top."""
    config: dict[str, Any] = {
        "data_dir": str(folder / "data"),
        "discovery": {"hf": False, "ollama": False, "folders": [], "default_model": True},
        "memory": {"ram_bytes": 16 * 1024**3, "gpus": []},
        "fleet": {"port_range": list(port_range())},
        "llamacpp": {"default_ctx": 2048},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    path = folder / "modelyard.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@contextmanager
def serve(folder: Path, admin_key: str | None = None, **sections: Any) -> Iterator[Server]:
    """Start ``modelyard serve`` with a fresh config under ``folder``; stop it afterwards and
    fail if any process it started is still alive."""
    folder.mkdir(parents=True, exist_ok=True)
    if admin_key is not None:
        sections.setdefault("api", {"admin_keys": [{"name": "test-admin", "key": admin_key}]})
    config = write_config(folder, **sections)
    port = free_port()
    log_path = folder / "serve.log"
    env = {
        **os.environ,
        "MODELYARD_CONFIG": str(config),
        "MODELYARD_DATA_DIR": str(folder / "data"),
    }
    env.pop("MODELYARD_PROFILE", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                modelyard_binary(),
                "--config",
                str(config),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", folder / "data", log_path, admin_key)
    try:
        wait_ready(server)
        yield server
    finally:
        leaked = stop(server)
        assert not leaked, f"processes left running after the server stopped: {leaked}"


def wait_ready(server: Server) -> None:
    """Poll ``/`` until it answers 200; fail at once if the server exits."""
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise AssertionError(
                    f"modelyard serve exited ({server.process.returncode}):\n{server.log()}"
                )
            try:
                if client.get(f"{server.url}/").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling interval of a readiness wait, not synchronisation
    raise AssertionError(
        f"modelyard serve did not answer within {START_TIMEOUT_S}s:\n{server.log()}"
    )


def stop(server: Server) -> list[int]:
    """SIGTERM the server, then SIGKILL after a timeout; returns pids of its tree still alive."""
    server.remember_tree()
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    survivors = []
    group = set()
    for candidate in psutil.process_iter():
        try:
            if os.getpgid(candidate.pid) == process.pid:
                group.add(candidate.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    for pid in server.tree | group:
        try:
            child = psutil.Process(pid)
            if child.status() != psutil.STATUS_ZOMBIE:
                survivors.append(pid)
                child.kill()
        except psutil.NoSuchProcess:
            pass
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    return survivors
