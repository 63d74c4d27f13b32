"""The gateway in front of fake backends run through the command engine: faults and limits.

Each test serves the real app on a real port (``harness.running``); the fake backend is the
standalone script in ``tests/fakes``, started by the fleet as a ``command`` engine instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from pathlib import Path
from typing import Any

import httpx

from tests.gateway.harness import fake_model, gateway_settings, running
from tests.support.ggufs import write_gguf
from tests.support.processes import wait_for

CHAT: dict[str, Any] = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}


def events(raw: bytes) -> list[bytes]:
    return [e for e in raw.split(b"\n\n") if e.startswith(b"data: ")]


async def test_chat_creates_an_on_demand_instance_and_says_what_served_it(
    tmp_path: Path,
) -> None:
    settings = gateway_settings(tmp_path, curated=[fake_model("fake")])
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        reply = await client.post("/v1/chat/completions", json=CHAT)
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-modelyard-model"] == "fake"
        assert reply.headers["x-modelyard-instance"] == "fake:01"
        assert reply.headers["x-modelyard-route"] == "model"
        assert reply.json()["model"] == "fake:01"
        assert reply.json()["choices"][0]["message"]["content"].startswith("tok0")
        [view] = gw.services.fleet.instances()
        assert (view.id, view.state, view.config.on_demand) == ("fake:01", "ready", True)
        health = (await client.get("/health")).json()
        assert health["instances"]["fake:01"]["health"] == "healthy"


async def test_stream_is_passed_through_event_by_event(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path, curated=[fake_model("fake", "--tokens 6")])
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        body = {**CHAT, "stream": True}
        async with client.stream("POST", "/v1/chat/completions", json=body) as reply:
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/event-stream")
            assert reply.headers["x-modelyard-instance"] == "fake:01"
            raw = b"".join([chunk async for chunk in reply.aiter_raw()])
        data = [e for e in events(raw)]
        assert len(data) == 8  # six tokens, the final chunk with usage, [DONE]
        assert data[-1] == b"data: [DONE]"
        assert json.loads(data[0][6:])["choices"][0]["delta"]["content"] == "tok0 "


async def test_persona_and_the_clients_system_message_become_one(tmp_path: Path) -> None:
    """Regression: the persona was sent as a second system turn before the client's own,
    which stricter chat templates refuse. Now one system message: the persona, then the
    client's; a conversation with no system message gets the persona alone."""
    settings = gateway_settings(tmp_path, curated=[fake_model("fake")])
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        await gw.services.fleet.create(
            "fake", {"system_prompt": "You are a pirate.", "display_name": "Pirate"}, actor="t"
        )
        messages = [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "hello"},
        ]
        reply = await client.post(
            "/v1/chat/completions", json={"model": "Pirate", "messages": messages}
        )
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-modelyard-instance"] == "fake:01"
        prompt = await client.post(
            "/v1/completions", json={"model": "fake:01", "prompt": "Once upon"}
        )
        assert prompt.status_code == 200, prompt.text
        view = gw.services.fleet.get("fake:01")
        received = (await client.get(view.base_url + "/_received")).json()
        assert received[0]["messages"] == [
            {"role": "system", "content": "You are a pirate.\n\nAnswer briefly."},
            messages[1],
        ]
        assert received[1]["prompt"] == "Once upon"  # a raw prompt is never changed
        parts = [
            {"role": "system", "content": [{"type": "text", "text": "Be kind."}]},
            {"role": "user", "content": "hi"},
        ]
        for sent in (parts, messages[1:]):
            await client.post("/v1/chat/completions", json={"model": "Pirate", "messages": sent})
        later = (await client.get(view.base_url + "/_received")).json()
        assert later[2]["messages"][0] == {
            "role": "system",
            "content": [
                {"type": "text", "text": "You are a pirate.\n\n"},
                {"type": "text", "text": "Be kind."},
            ],
        }
        assert later[3]["messages"] == [
            {"role": "system", "content": "You are a pirate."},
            messages[1],
        ]


async def test_backend_dying_mid_stream_ends_the_stream_with_an_error_event(
    tmp_path: Path,
) -> None:
    fake = fake_model("fake", "--die-mid-stream --tokens 200 --tokens-per-s 100")
    settings = gateway_settings(tmp_path, curated=[fake])
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        body = {**CHAT, "stream": True}
        async with client.stream("POST", "/v1/chat/completions", json=body) as reply:
            raw = b"".join([chunk async for chunk in reply.aiter_raw()])
        data = events(raw)
        assert data[-1] == b"data: [DONE]"
        error = json.loads(data[-2][6:])["error"]
        assert error["src"] == "upstream"
        assert error["type"] == "upstream_error"
        assert "mid-stream" in error["message"]
        assert len(data) == 4  # two token chunks, the error, [DONE]
        assert gw.services.gateway.health()["instances"]["fake:01"]["last_error"]


async def test_slow_first_byte_times_out_in_openai_shape(tmp_path: Path) -> None:
    settings = gateway_settings(
        tmp_path,
        curated=[fake_model("fake", "--delay 5")],
        gateway={"timeouts": {"first_byte_s": 0.3}, "max_attempts": 1},
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        reply = await client.post("/v1/chat/completions", json=CHAT)
        assert reply.status_code == 504
        error = reply.json()["error"]
        assert (error["code"], error["src"]) == ("upstream_timeout", "upstream")
        assert "first byte" in error["message"]


async def test_retry_on_the_next_instance_before_the_first_byte(tmp_path: Path) -> None:
    """A 5xx and a first-byte timeout are retried on the next instance; both failed ones
    go into cooldown and later requests go straight to the healthy one."""
    settings = gateway_settings(
        tmp_path,
        curated=[fake_model("fake")],
        gateway={
            "timeouts": {"first_byte_s": 0.5},
            "strategy": "round_robin",
            "failures_to_cooldown": 1,
            "cooldown_base_s": 30.0,
        },
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        fleet = gw.services.fleet
        await fleet.create("fake", {"engine_args": {"extra_args": ["--fail-after", "0"]}})
        await fleet.create("fake", {"engine_args": {"extra_args": ["--delay", "5"]}})
        await fleet.create("fake")
        for instance in ("fake:01", "fake:02", "fake:03"):
            await fleet.ensure_ready(instance)
        routes = []
        for _ in range(3):
            reply = await client.post("/v1/chat/completions", json=CHAT)
            assert reply.status_code == 200, reply.text
            assert reply.headers["x-modelyard-instance"] == "fake:03"
            routes.append(reply.headers["x-modelyard-route"])
        assert routes[0].startswith("retry after fake:02 failed: no first byte"), routes
        assert routes[1:] == ["model", "model"]
        health = gw.services.gateway.health()["instances"]
        assert health["fake:01"]["health"] == "cooldown"
        assert "answered 500" in health["fake:01"]["last_error"]
        assert health["fake:02"]["health"] == "cooldown"
        assert health["fake:03"]["health"] == "healthy"


async def test_never_ready_model_falls_back_with_the_reason(tmp_path: Path) -> None:
    settings = gateway_settings(
        tmp_path,
        curated=[fake_model("broken", "--never-ready"), fake_model("backup")],
        fleet={"start_timeout_s": 1.0},
        gateway={"fallbacks": {"broken": ["backup"]}},
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=20) as client:
        body = {**CHAT, "model": "broken"}
        reply = await client.post("/v1/chat/completions", json=body)
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-modelyard-instance"] == "backup:01"
        route = reply.headers["x-modelyard-route"]
        assert route.startswith("fallback after broken:01 failed:"), route
        assert route.endswith("fallback:backup")


async def test_never_ready_without_fallback_is_a_503_from_the_fleet(tmp_path: Path) -> None:
    settings = gateway_settings(
        tmp_path, curated=[fake_model("broken", "--never-ready")], fleet={"start_timeout_s": 1.0}
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=20) as client:
        body = {**CHAT, "model": "broken", "stream": True}
        async with client.stream("POST", "/v1/chat/completions", json=body) as reply:
            raw = b"".join([chunk async for chunk in reply.aiter_raw()])
        # The stream was committed while loading: keep-alive comments, then the error event.
        assert raw.startswith(b": loading model...\n\n")
        data = events(raw)
        assert json.loads(data[0][6:])["error"]["src"] == "fleet"
        assert data[-1] == b"data: [DONE]"
        reply = await client.post("/v1/chat/completions", json={**body, "stream": False})
        assert reply.status_code == 503
        assert reply.json()["error"]["code"] == "start_failed"


async def test_a_missing_engine_binary_on_demand_is_a_503_naming_it(tmp_path: Path) -> None:
    """Regression: an on-demand start without llama-server answered 400 "invalid request",
    blaming the client for what this machine lacks."""
    gguf = tmp_path / "tiny.gguf"
    write_gguf(gguf, name="Tiny")
    missing = tmp_path / "no-such" / "llama-server"
    settings = gateway_settings(
        tmp_path,
        curated=[{"id": "tiny", "engine": "llamacpp", "path": str(gguf)}],
        llamacpp={"binary": str(missing)},
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=20) as client:
        reply = await client.post("/v1/chat/completions", json={**CHAT, "model": "tiny"})
    assert reply.status_code == 503
    error = reply.json()["error"]
    assert error["code"] == "binary_not_found"
    assert str(missing) in error["message"]


async def test_fifty_concurrent_requests_to_a_cold_model_start_it_once(tmp_path: Path) -> None:
    settings = gateway_settings(
        tmp_path, curated=[fake_model("fake", "--ready-after 0.3")], gateway={"queue_size": 64}
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        replies = await asyncio.gather(
            *(client.post("/v1/chat/completions", json=CHAT) for _ in range(50))
        )
        assert [r.status_code for r in replies] == [200] * 50
        assert {r.headers["x-fake-pid"] for r in replies} == {
            str(gw.services.fleet.get("fake:01").pid)
        }
        assert [v.id for v in gw.services.fleet.instances()] == ["fake:01"]
        assert gw.services.fleet.get("fake:01").restarts == 0


async def test_requests_racing_idle_unloads_are_all_served(tmp_path: Path) -> None:
    """Regression (llama-swap #946): a request arriving while its instance is being unloaded
    for idleness hung. 1,000 requests in bursts with pauses around the idle TTL: every one is
    answered, and unloads did happen."""
    settings = gateway_settings(tmp_path, curated=[fake_model("fake")])
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        await gw.services.fleet.create("fake", {"on_demand": True, "idle_ttl": 0.05})
        starts: set[str] = set()
        rng = random.Random(4)
        async with asyncio.timeout(240):
            for _ in range(100):
                replies = await asyncio.gather(
                    *(client.post("/v1/chat/completions", json=CHAT) for _ in range(10))
                )
                assert [r.status_code for r in replies] == [200] * 10
                starts.update(r.headers["x-fake-pid"] for r in replies)
                await asyncio.sleep(rng.uniform(0.0, 0.1))  # traffic shape, not a wait
        assert len(starts) > 1, "no unload happened: the test did not race anything"


async def test_full_queue_is_a_429_with_retry_after(tmp_path: Path) -> None:
    settings = gateway_settings(
        tmp_path,
        curated=[fake_model("fake", "--delay 2")],
        gateway={"queue_size": 1, "retry_after_s": 3},
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        await gw.services.fleet.create("fake", {"engine_args": {"parallel": 1}})
        await gw.services.fleet.ensure_ready("fake:01")
        first = asyncio.ensure_future(client.post("/v1/chat/completions", json=CHAT))
        await wait_for(
            lambda: gw.services.gateway.health()["instances"]["fake:01"]["in_flight"] == 1,
            10,
            "the first request",
        )
        second = asyncio.ensure_future(client.post("/v1/chat/completions", json=CHAT))
        await wait_for(
            lambda: gw.services.gateway.health()["instances"]["fake:01"]["queued"] == 1,
            10,
            "the second request to queue",
        )
        third = await client.post("/v1/chat/completions", json=CHAT)
        assert third.status_code == 429
        assert third.headers["retry-after"] == "3"
        assert third.json()["error"]["type"] == "rate_limit_error"
        assert [(await first).status_code, (await second).status_code] == [200, 200]


async def test_client_going_away_cancels_the_upstream_request(tmp_path: Path) -> None:
    slow = fake_model("fake", "--tokens 10000 --tokens-per-s 50")
    settings = gateway_settings(tmp_path, curated=[slow])
    async with running(settings) as gw:
        gateway = gw.services.gateway
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
            body = {**CHAT, "stream": True}
            async with client.stream("POST", "/v1/chat/completions", json=body) as reply:
                chunks = reply.aiter_raw()
                await anext(chunks)
                await anext(chunks)
                assert gateway.health()["instances"]["fake:01"]["in_flight"] == 1
        # The client is gone: the gateway lets go of the backend long before its 200 s answer.
        await wait_for(
            lambda: gateway.health()["instances"]["fake:01"]["in_flight"] == 0, 10, "release"
        )
        assert gw.services.fleet.get("fake:01").in_flight == 0


async def test_client_going_away_cancels_a_non_streamed_request(tmp_path: Path) -> None:
    """Regression: a non-streamed request held its backend, slot and lease until the backend
    answered, however long after its client had gone."""
    slow = fake_model("fake", "--delay 200")
    settings = gateway_settings(tmp_path, curated=[slow])
    async with running(settings) as gw:
        gateway = gw.services.gateway
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
            request = asyncio.ensure_future(client.post("/v1/chat/completions", json=CHAT))

            def sent() -> bool:
                instance = gateway.health()["instances"].get("fake:01")
                return instance is not None and instance["in_flight"] == 1

            await wait_for(sent, 20, "the request to reach the backend")
            request.cancel()  # closes the client's connection
            with contextlib.suppress(asyncio.CancelledError):
                await request
        await wait_for(
            lambda: gateway.health()["instances"]["fake:01"]["in_flight"] == 0, 10, "release"
        )
        assert gw.services.fleet.get("fake:01").in_flight == 0


async def test_in_flight_gauge_counts_the_leases_out(tmp_path: Path) -> None:
    """Regression: ``modelyard_in_flight`` was declared but never fed. It reads the one
    lease count the gateway, balancing and the fleet share."""
    settings = gateway_settings(tmp_path, curated=[fake_model("fake", "--delay 30")])
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=40) as client:
        await gw.services.fleet.create("fake")
        await gw.services.fleet.start_instance("fake:01")
        slow = asyncio.ensure_future(client.post("/v1/chat/completions", json=CHAT))
        try:
            await wait_for(
                lambda: gw.services.fleet.leases.in_flight("fake:01") == 1, 10, "the lease"
            )
            text = (await client.get("/metrics")).text
            assert 'modelyard_in_flight{instance="fake:01"} 1.0' in text
            assert (await client.get("/health")).json()["instances"]["fake:01"]["in_flight"] == 1
        finally:
            slow.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await slow
        await wait_for(lambda: gw.services.fleet.leases.in_flight("fake:01") == 0, 10, "release")
        text = (await client.get("/metrics")).text
        assert 'modelyard_in_flight{instance="fake:01"}' not in text
