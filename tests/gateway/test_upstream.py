"""The backend connection pool against real loopback servers.

Three kinds of server: the fake backend and the bench's instant backend as subprocesses (what
the gateway really talks to), and small asyncio servers in the test's loop that misbehave on
cue (close a kept-alive connection, stall, answer until EOF) and count what they saw.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from modelyard.errors import UpstreamError, UpstreamTimeout
from modelyard.upstream import UpstreamPool, UpstreamResponse
from tests.gateway.harness import FAKE_BACKEND
from tests.support.processes import free_port, wait_for

PEER_BACKEND = Path(__file__).resolve().parents[2] / "bench" / "gateway" / "peer_backend.py"
CHAT = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}


def body(**extra: object) -> bytes:
    return json.dumps({**CHAT, **extra}).encode()


async def read_all(response: UpstreamResponse, idle_s: float = 5.0) -> list[bytes]:
    pieces = [response.first]
    while (piece := await response.next(idle_s)) is not None:
        pieces.append(piece)
    response.release()
    return pieces


@asynccontextmanager
async def subprocess_backend(script: Path, *flags: str) -> AsyncIterator[str]:
    """``script`` on a free port until the block ends; yields its base URL."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        "--port",
        str(port),
        *flags,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def answering() -> bool:
            if process.returncode is not None:
                pytest.fail(f"{script.name} exited with {process.returncode}")
            try:
                return httpx.get(url + "/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_for(answering, 20, f"{script.name} to answer")
        yield url
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


Handler = Callable[["Server", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Server:
    """An asyncio server on 127.0.0.1 running ``handler`` per connection; counts them."""

    handler: Handler
    connections: int = 0
    requests: int = 0
    closed: int = 0
    bodies: list[bytes] = field(default_factory=list)

    async def read_request(self, reader: asyncio.StreamReader) -> bool:
        """One request (head and content-length body); False at EOF."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return False
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        self.bodies.append(await reader.readexactly(length))
        self.requests += 1
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.closed += 1


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[tuple[Server, str]]:
    server = Server(handler)
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}/v1/chat/completions"
    finally:
        listener.close()


def ok(text: bytes = b'{"ok":true}', extra: bytes = b"") -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    return head + extra + b"content-length: %d\r\n\r\n" % len(text) + text


async def answer_all(server: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    while await server.read_request(reader):
        w.write(ok())
        await w.drain()


@pytest.fixture
async def pool() -> AsyncIterator[UpstreamPool]:
    pool = UpstreamPool(connect_s=5.0)
    yield pool
    await pool.aclose()


async def test_connections_are_kept_alive_and_reused(pool: UpstreamPool) -> None:
    async with serving(answer_all) as (server, url):
        for _ in range(5):
            response = await pool.post(url, body(), first_byte_s=5)
            assert response.status == 200
            assert b"".join(await read_all(response)) == b'{"ok":true}'
            assert pool.idle_count(url) == 1
        assert (server.connections, server.requests) == (1, 5)


async def test_content_length_and_chunked_bodies_from_the_fake_backend(
    pool: UpstreamPool,
) -> None:
    async with subprocess_backend(FAKE_BACKEND, "--tokens", "5") as base:
        url = base + "/v1/chat/completions"
        whole = await pool.post(url, body(), first_byte_s=10)
        assert (b"content-type", b"application/json") in whole.headers
        answer = json.loads(b"".join(await read_all(whole)))
        assert answer["choices"][0]["message"]["content"] == "tok0 tok1 tok2 tok3 tok4 "

        streamed = await pool.post(url, body(stream=True), first_byte_s=10)
        assert (b"transfer-encoding", b"chunked") in streamed.headers
        raw = b"".join(await read_all(streamed))
        events = [e for e in raw.split(b"\n\n") if e]
        assert len(events) == 5 + 2  # tokens, the usage event, [DONE]
        assert events[-1] == b"data: [DONE]"
        assert pool.idle_count(url) == 1  # both on one connection


async def test_stream_pieces_come_one_event_at_a_time(pool: UpstreamPool) -> None:
    """Regression: a relay that read into a buffer handed clients several events at once."""
    async with subprocess_backend(PEER_BACKEND, "--chunks", "6", "--interval-ms", "20") as base:
        response = await pool.post(
            base + "/v1/chat/completions", body(stream=True), first_byte_s=10
        )
        pieces = await read_all(response)
    token_pieces = [p for p in pieces if b"chat.completion.chunk" in p]
    assert len(token_pieces) == 6
    assert all(p.count(b"data:") == 1 for p in token_pieces)


async def test_a_kept_alive_connection_closed_by_the_backend_is_retried_once_fresh(
    pool: UpstreamPool,
) -> None:
    """The backend answers the first request on each connection, then reads the next one and
    hangs up without a byte: the request is sent again on a new connection."""

    async def one_per_connection(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if await server.read_request(reader):
            writer.write(ok())
            await writer.drain()
        await server.read_request(reader)  # the next request: dropped unanswered

    async with serving(one_per_connection) as (server, url):
        first = await pool.post(url, body(), first_byte_s=5)
        await read_all(first)
        second = await pool.post(url, body(n=2), first_byte_s=5)
        assert b"".join(await read_all(second)) == b'{"ok":true}'
        assert server.connections == 2
        assert server.bodies[1:] == [body(n=2), body(n=2)]


async def test_no_retry_once_a_response_byte_came_back(pool: UpstreamPool) -> None:
    async def half_an_answer(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if await server.read_request(reader):
            writer.write(ok())
            await writer.drain()
        if await server.read_request(reader):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-")
            await writer.drain()

    async with serving(half_an_answer) as (server, url):
        await read_all(await pool.post(url, body(), first_byte_s=5))
        with pytest.raises(UpstreamError) as caught:
            await pool.post(url, body(), first_byte_s=5)
        assert caught.value.message == "connection closed"
        assert (server.connections, server.requests) == (1, 2)


async def test_a_fresh_connection_closed_unanswered_is_not_retried(pool: UpstreamPool) -> None:
    async def hang_up(server: Server, reader: asyncio.StreamReader, _: object) -> None:
        await server.read_request(reader)

    async with serving(hang_up) as (server, url):
        with pytest.raises(UpstreamError) as caught:
            await pool.post(url, body(), first_byte_s=5)
        assert caught.value.message == "connection closed"
        assert server.connections == 1


async def test_refused_connection(pool: UpstreamPool) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/chat/completions"
    with pytest.raises(UpstreamError) as caught:
        await pool.post(url, body(), first_byte_s=5)
    assert caught.value.message == "connect refused"


async def test_backend_dying_mid_stream_fails_the_next_read(pool: UpstreamPool) -> None:
    flags = ("--die-mid-stream", "--tokens", "50", "--tokens-per-s", "100")
    async with subprocess_backend(FAKE_BACKEND, *flags) as base:
        url = base + "/v1/chat/completions"
        response = await pool.post(url, body(stream=True), first_byte_s=10)
        assert response.status == 200
        with pytest.raises(UpstreamError) as caught:
            await read_all(response)
        assert caught.value.message in ("connection closed", "connection reset")
        response.release()
        assert pool.idle_count(url) == 0


async def test_first_byte_and_idle_timeouts(pool: UpstreamPool) -> None:
    async def silent(server: Server, reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await reader.read()  # until the client hangs up

    async with serving(silent) as (server, url):
        with pytest.raises(UpstreamTimeout) as caught:
            await pool.post(url, body(), first_byte_s=0.2)
        assert "no first byte" in caught.value.message
        await wait_for(lambda: server.closed == 1, 5, "the timed-out connection to close")

    async def stall(server: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await w.drain()
        await reader.read()

    async with serving(stall) as (server, url):
        response = await pool.post(url, body(), first_byte_s=5)
        assert response.first == b"hello"
        with pytest.raises(UpstreamTimeout) as stalled:
            await response.next(0.2)
        assert "stalled" in stalled.value.message
        response.release()
        await wait_for(lambda: server.closed == 1, 5, "the stalled connection to close")


async def test_a_cancelled_request_closes_its_connection(pool: UpstreamPool) -> None:
    async def silent(server: Server, reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await reader.read()

    async with serving(silent) as (server, url):
        task = asyncio.ensure_future(pool.post(url, body(), first_byte_s=30))
        await wait_for(lambda: server.requests == 1, 5, "the request to arrive")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_for(lambda: server.closed == 1, 5, "the connection to close")
        assert pool.idle_count(url) == 0


async def test_a_body_read_until_the_backend_closes(pool: UpstreamPool) -> None:
    async def until_eof(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\npart one, ")
        await writer.drain()
        writer.write(b"part two")
        await writer.drain()

    async with serving(until_eof) as (_, url):
        response = await pool.post(url, body(), first_byte_s=5)
        assert b"".join(await read_all(response)) == b"part one, part two"
        assert pool.idle_count(url) == 0


async def test_a_large_request_body_arrives_whole(pool: UpstreamPool) -> None:
    async with serving(answer_all) as (server, url):
        big = body(padding="x" * 300_000)
        await read_all(await pool.post(url, big, first_byte_s=5))
        assert server.bodies == [big]


async def test_get_status_reads_each_answer_whole_on_one_kept_alive_connection(
    pool: UpstreamPool,
) -> None:
    """The fleet's health checks: a 503 while loading, then a 200, and a refused port is an
    UpstreamError (so readiness polling goes on), never another exception."""

    async def health(server: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        for status in (b"503 Service Unavailable", b"200 OK"):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"GET /health HTTP/1.1\r\n")
            server.requests += 1
            text = b'{"status":"loading model"}'
            w.write(b"HTTP/1.1 %s\r\ncontent-length: %d\r\n\r\n%s" % (status, len(text), text))
            await w.drain()
        await reader.read()

    async with serving(health) as (server, url):
        health_url = url.replace("/v1/chat/completions", "/health")
        assert await pool.get_status(health_url, 5) == 503
        assert await pool.get_status(health_url, 5) == 200
        assert (server.connections, server.requests) == (1, 2)
        assert pool.idle_count(health_url) == 1
    with pytest.raises(UpstreamError) as caught:
        await pool.get_status(f"http://127.0.0.1:{free_port()}/health", 5)
    assert caught.value.message == "connect refused"
