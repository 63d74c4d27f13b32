"""The gateway on a real port: ``create_app`` under uvicorn in the test's own event loop.

``running(settings)`` builds the services, serves the app on a free 127.0.0.1 port until the
block ends, then shuts uvicorn down (the lifespan stops every instance) and checks that no
backend process outlived it. Streaming and disconnects need this real server: httpx's
in-process ASGI transport collects whole bodies.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml

from modelyard.app import create_app
from modelyard.services import Services, build_services
from modelyard.settings import Settings, load_settings
from tests.support.processes import free_port, server_children, wait_for

FAKE_BACKEND = Path(__file__).resolve().parents[1] / "fakes" / "fake_backend.py"
START_TIMEOUT_S = 20.0


def port_range(width: int = 60) -> tuple[int, int]:
    low = min(free_port(), 65535 - width)
    return low, low + width - 1


def fake_command(flags: str = "") -> str:
    """A command-engine line that runs the fake backend, naming itself after the instance."""
    return f"{sys.executable} {FAKE_BACKEND} --port ${{PORT}} --model ${{INSTANCE_ID}} {flags}"


def fake_model(model_id: str, flags: str = "", **fields: Any) -> dict[str, Any]:
    """A curated entry served by the fake backend through the command engine."""
    entry = {"id": model_id, "engine": "command", "command": fake_command(flags), "tier": "fast"}
    return {**entry, **fields}


def gateway_settings(folder: Path, **sections: Any) -> Settings:
    """Hermetic settings: a config file under ``folder``, no discovery, memory set by hand,
    quick fleet timeouts; ``sections`` merged over the defaults one level deep."""
    config: dict[str, Any] = {
        "data_dir": str(folder / "data"),
        "discovery": {"hf": False, "ollama": False, "folders": [], "default_model": False},
        "memory": {"ram_bytes": 64 * 1024**3, "gpus": []},
        "fleet": {
            "port_range": list(port_range()),
            "start_timeout_s": 20.0,
            "stop_timeout_s": 2.0,
            "restart_backoff_s": 0.05,
        },
        "figures": {"request_log": False},
        "gateway": {"keepalive_s": 0.2, "catalog_refresh_s": 60.0},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "modelyard.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_settings(path)


@dataclass
class Running:
    """A served gateway: its base address and the services behind it."""

    url: str
    services: Services

    @property
    def v1(self) -> str:
        return self.url + "/v1"


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Running]:
    """Serve ``create_app(build_services(settings))`` on a free port for the block."""
    services = build_services(settings)
    services.catalog.rescan()
    port = free_port()
    config = uvicorn.Config(
        create_app(services),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        http="httptools",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    try:
        await wait_for(lambda: server.started or task.done(), START_TIMEOUT_S, "uvicorn")
        if task.done():
            task.result()
            pytest.fail("uvicorn exited at start")
        yield Running(f"http://127.0.0.1:{port}", services)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30.0)
        services.close()
        left = server_children()
        for process in left:
            process.kill()
        assert not left, f"backends outlived the gateway: {[p.pid for p in left]}"
