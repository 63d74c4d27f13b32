"""The server-sent event stream, on a real server (the in-process transport buffers bodies)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import api_settings
from tests.gateway.harness import running
from tests.support.processes import wait_for

DEADLINE_S = 20.0


async def _events(
    lines: AsyncIterator[str], out: list[dict[str, Any]], comments: list[str]
) -> None:
    kind = None
    async for line in lines:
        if line.startswith(":"):
            comments.append(line)
        elif line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            out.append({"kind": kind, **json.loads(line.removeprefix("data: "))})


async def test_state_changes_arrive_as_server_sent_events(tmp_path: Path) -> None:
    settings = api_settings(tmp_path / "cfg", api={"events_keepalive_s": 0.1})
    async with running(settings) as served, httpx.AsyncClient(base_url=served.url) as client:
        events: list[dict[str, Any]] = []
        comments: list[str] = []
        async with client.stream("GET", "/api/events", timeout=DEADLINE_S) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            reader = asyncio.ensure_future(_events(response.aiter_lines(), events, comments))
            try:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + DEADLINE_S
                await wait_for(lambda: bool(comments), DEADLINE_S, "the first comment")
                await client.post("/api/models/rescan")
                await client.post("/api/instances", json={"model": "beta"})
                await client.post("/api/instances/beta:01/start")
                profile = {"name": "p", "enabled_models": ["beta"]}
                await client.post("/api/models/profiles", json=profile)
                await client.post("/api/models/profiles/p/activate")

                def seen() -> set[str]:
                    return {e["kind"] for e in events}

                wanted = {
                    "catalog.rescan.progress",
                    "catalog.rescan.done",
                    "instance.status",
                    "profile.changed",
                    "profile.activated",
                }
                while not wanted <= seen() or ": keep-alive" not in comments:
                    assert loop.time() < deadline, f"saw only {sorted(seen())}, {comments[:3]}"
                    await asyncio.sleep(0.01)
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
        states = [e["state"] for e in events if e["kind"] == "instance.status"]
        assert "ready" in states
        activated = next(e for e in events if e["kind"] == "profile.activated")
        assert activated["name"] == "p" and activated["disable"] == ["alpha"]
        assert comments[0] == ": connected"
        bus = served.services.events
        deadline = asyncio.get_running_loop().time() + DEADLINE_S
        while bus.subscribers:
            assert asyncio.get_running_loop().time() < deadline, "subscriber left behind"
            await asyncio.sleep(0.01)
