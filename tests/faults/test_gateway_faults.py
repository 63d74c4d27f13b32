"""Issue 10, the gateway's items: no 500 on bad input, bounded generation, the request after a
crash, a body that never completes.

Every test serves the real app on a real port (``harness.running``) in front of the fake
backend, a real subprocess started by the fleet through the ``command`` engine; the last one
runs the real llama-server with Gemma 3 270M.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.gateway.harness import Running, fake_model, gateway_settings, running
from tests.support.processes import wait_for

USER = [{"role": "user", "content": "hi"}]
CHAT: dict[str, Any] = {"model": "fake", "messages": USER}
JSON = {"content-type": "application/json"}


async def post_raw(client: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
    return await client.post(path, content=body, headers=JSON)


async def received(client: httpx.AsyncClient, gw: Running, instance_id: str) -> list[Any]:
    """Every body the fake backend behind ``instance_id`` was sent, oldest first."""
    reply = await client.get(gw.services.fleet.get(instance_id).base_url + "/_received")
    bodies: list[Any] = reply.json()
    return bodies


async def kill(pid: int) -> None:
    """SIGKILL ``pid`` and wait until it is dead (its sockets closed: a zombie, or reaped)."""
    os.kill(pid, signal.SIGKILL)

    def dead() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    await wait_for(dead, 10, f"pid {pid} to die")


def openai_error(reply: httpx.Response, status: int) -> dict[str, Any]:
    """The OpenAI-shaped error of ``reply``, after checking its status and shape."""
    assert reply.status_code == status, reply.text
    error: dict[str, Any] = reply.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    return error


# -- 5: 500s on /v1 -------------------------------------------------------------------------


async def test_history_with_a_tiny_bucket_is_a_400_not_an_overflow(tmp_path: Path) -> None:
    """Prevents the 500 (``OverflowError``: a stored request's time over 5e-324 is infinite)
    of ``GET /api/models/statistics/history?bucket_s=5e-324``."""
    settings = gateway_settings(tmp_path, curated=[fake_model("fake")])
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        await wait_for(lambda: gw.services.figures.snapshot()["pending"] > 0, 10, "the record")
        await gw.services.figures.flush()
        for tiny in ("5e-324", "1e-300", "0.5"):
            reply = await client.get(f"/api/models/statistics/history?bucket_s={tiny}")
            error = openai_error(reply, 400)
            assert (error["param"], error["code"]) == ("bucket_s", "invalid_value")
        reply = await client.get("/api/models/statistics/history?bucket_s=1")
        assert reply.status_code == 200, reply.text
        assert sum(b["requests"] for b in reply.json()["buckets"]) == 1
