"""What a real ``modelyard serve`` imports over an existing store: the idle footprint.

Each package kept out here is resident memory the server would otherwise carry (issue 4's
idle RSS goal): sqlite_utils and numpy (only to apply a pending migration), prometheus_client
(only on a /metrics scrape), httpx (the CLI's client; the fleet's health checks use the
gateway's pool), huggingface_hub (only to scan its cache). The server writes its module list
on SIGUSR1, at idle after its start, a request and the on-demand start of an instance.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from modelyard.store import Store
from tests.gateway.harness import fake_model, gateway_settings
from tests.support.processes import free_port

KEPT_OUT = {"numpy", "sqlite_utils", "prometheus_client", "httpx", "huggingface_hub"}

# `modelyard serve` that writes sys.modules to the file named first when sent SIGUSR1.
_SERVE = """
import os, signal, sys
out = sys.argv.pop(1)
def dump(*_):
    with open(out + ".part", "w") as f:
        f.write("\\n".join(sorted(sys.modules)))
    os.replace(out + ".part", out)
signal.signal(signal.SIGUSR1, dump)
from modelyard.cli.app import main
main()
"""


def _wait(process: subprocess.Popen[bytes], log: Path, what: str, done: Callable[[], bool]) -> None:
    """Poll ``done`` to a deadline; fail at once if serve exited."""
    deadline = time.monotonic() + 30
    while not done():
        assert process.poll() is None, f"serve exited: {log.read_text(errors='replace')}"
        assert time.monotonic() < deadline, f"serve never {what}"
        time.sleep(0.02)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_over_an_existing_store_keeps_heavy_packages_out(tmp_path: Path) -> None:
    """Prevents idle RSS creeping back: a module-level import of one of ``KEPT_OUT`` anywhere
    on serve's path (the store, the figures, the fleet, the CLI's other commands)."""
    port = free_port()
    settings = gateway_settings(tmp_path, server={"port": port}, curated=[fake_model("fake")])
    assert settings.config_file is not None
    Store.open(settings.db_path).close()  # the existing store: every migration applied
    modules, log = tmp_path / "modules.txt", tmp_path / "serve.log"
    argv = [sys.executable, "-c", _SERVE, str(modules), "--config", str(settings.config_file)]
    with log.open("wb") as out:
        process = subprocess.Popen([*argv, "serve"], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(process, log, "answered /health", lambda: _healthy(url))
        chat = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
        answer = httpx.post(f"{url}/v1/chat/completions", json=chat, timeout=30)
        assert answer.status_code == 200, answer.text
        os.kill(process.pid, signal.SIGUSR1)
        _wait(process, log, "wrote its modules", modules.exists)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    top_level = {name.split(".")[0] for name in modules.read_text().split()}
    assert "fastapi" in top_level  # the list is serve's
    assert top_level & KEPT_OUT == set()
