"""API fixtures: the real app over real services (SQLite under tmp_path), a small synthetic
catalog of curated models served by the fake backend, and an in-process HTTP client."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from modelyard.app import create_app
from modelyard.services import Services, build_services
from modelyard.settings import Settings
from tests.gateway.harness import fake_model, gateway_settings
from tests.support.processes import server_children

GIB = 1024**3
ADMIN_KEY = "admin-key-0123456789"
INFERENCE_KEY = "inference-key-0123456789"


def catalog_entries() -> list[dict[str, Any]]:
    return [
        fake_model(
            "alpha",
            parameters_b=7.0,
            quantization="Q4_K_M",
            context_length=8192,
            memory_bytes=4 * GIB,
            tier="balanced",
            roles={"code": 80},
        ),
        fake_model(
            "beta",
            parameters_b=1.0,
            quantization="Q8_0",
            context_length=4096,
            memory_bytes=1 * GIB,
            tier="fast",
            roles={"code": 50, "caption": 70},
        ),
        fake_model(
            "gamma",
            parameters_b=70.0,
            quantization="Q4_K_M",
            memory_bytes=40 * GIB,
            tier="powerful",
            enabled=False,
        ),
    ]


def api_settings(folder: Path, **sections: Any) -> Settings:
    # The whole 16 GiB and room for every model: admission enforces the deployment, and a
    # CPU deployment would otherwise budget half the RAM and models_for(8 GiB) = 1 model.
    deployment = {"memory_budget_bytes": 16 * GIB, "max_models_loaded": 8}
    return gateway_settings(
        folder,
        **{
            "curated": catalog_entries(),
            "memory": {"ram_bytes": 16 * GIB, "gpus": [], "reserve_bytes": 0},
            "deployment": deployment,
            **sections,
        },
    )


def keyed(folder: Path) -> Settings:
    return api_settings(
        folder,
        api={"admin_keys": [{"name": "alice", "key": ADMIN_KEY}]},
        gateway={"api_keys": [{"name": "app", "key": INFERENCE_KEY}]},
    )


@dataclass
class Api:
    client: httpx.AsyncClient
    services: Services
    app: FastAPI


@asynccontextmanager
async def serving(settings: Settings, headers: dict[str, str] | None = None) -> AsyncIterator[Api]:
    """The app with its lifespan run, and a client over ASGI. Every backend is stopped after."""
    services = build_services(settings)
    services.catalog.rescan()
    app = create_app(services)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://modelyard.test",
                headers=headers or {},
                timeout=30,
            ) as client,
        ):
            yield Api(client, services, app)
    finally:
        services.close()
        left = server_children()
        for process in left:
            process.kill()
        assert not left, f"backends outlived the app: {[p.pid for p in left]}"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with serving(api_settings(tmp_path / "cfg")) as running:
        yield running


@pytest.fixture
async def keyed_api(tmp_path: Path) -> AsyncIterator[Api]:
    async with serving(keyed(tmp_path / "cfg")) as running:
        yield running


Check = Callable[[httpx.Response, int], Any]


def expect(response: httpx.Response, status: int) -> Any:
    """The JSON body after checking the status (the body is shown when it differs)."""
    assert response.status_code == status, response.text
    return response.json() if response.content else None


@contextmanager
def served_in_thread(settings: Settings) -> Iterator[str]:
    """The app under uvicorn at ``settings.server`` in a thread with its own event loop, for
    callers that block (the CLI, schemathesis). Yields the base URL; stops every backend."""
    services = build_services(settings)
    services.catalog.rescan()
    host, port = settings.server.host, settings.server.port
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(services), host=host, port=port, log_level="warning", lifespan="on"
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    started = threading.Event()
    while not started.wait(0.01):
        if server.started:
            started.set()
        assert thread.is_alive(), "uvicorn exited at start"
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        services.close()
        left = server_children()
        for process in left:
            process.kill()
        assert not thread.is_alive(), "uvicorn did not stop"
        assert not left, f"backends outlived the app: {[p.pid for p in left]}"
