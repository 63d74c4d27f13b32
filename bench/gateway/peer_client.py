"""A small keep-alive HTTP/1.1 load client: the same client for every target compared.

A general client (httpx) would cap the request rate near what the fastest proxy serves, so
the direct baseline would measure the client. This one writes a fixed request and parses
only what it needs: status, ``content-length`` or chunked framing.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Target:
    """Where to send requests: ``base_url`` like ``http://127.0.0.1:8100``, and the key."""

    base_url: str
    api_key: str = "none"
    model: str = "bench"

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.base_url)
        return parts.hostname or "127.0.0.1", parts.port or 80

    def request(self, *, stream: bool) -> bytes:
        body = json.dumps(
            {
                "model": self.model,
                "messages": [{"role": "user", "content": "hi"}],
                "stream": stream,
                "max_tokens": 8,
            }
        ).encode()
        host, port = self.address
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}:{port}\r\n"
            f"authorization: Bearer {self.api_key}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


@dataclass(frozen=True)
class StreamTiming:
    first_chunk_s: float
    events: int
    coalesced: bool  # some HTTP chunk carried more than one SSE event


class Connection:
    """One keep-alive connection. Raises ConnectionError/IncompleteReadError on failure."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, target: Target) -> Connection:
        reader, writer = await asyncio.open_connection(*target.address)
        return cls(reader, writer)

    def close(self) -> None:
        self.writer.close()

    async def _head(self, request: bytes) -> tuple[int, dict[bytes, bytes]]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    async def call(self, request: bytes) -> tuple[int, bytes]:
        """Send one request; return its status and whole body."""
        status, headers = await self._head(request)
        if b"content-length" in headers:
            return status, await self.reader.readexactly(int(headers[b"content-length"]))
        body = b"".join([chunk async for chunk in self._chunks(headers)])
        return status, body

    async def stream(self, request: bytes) -> StreamTiming:
        """Send one streaming request; time its first SSE event and count the events."""
        start = time.perf_counter()
        status, headers = await self._head(request)
        if status != 200:
            raise ConnectionError(f"stream answered {status}")
        first: float | None = None
        events = 0
        coalesced = False
        async for chunk in self._chunks(headers):
            n = chunk.count(b"data:")
            if n and first is None:
                first = time.perf_counter() - start
            events += n
            coalesced = coalesced or n > 1
        return StreamTiming(first_chunk_s=first or float("nan"), events=events, coalesced=coalesced)

    async def _chunks(self, headers: dict[bytes, bytes]) -> AsyncIterator[bytes]:
        if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
            while data := await self.reader.read(65536):
                yield data
            return
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return
            data = await self.reader.readexactly(size + 2)
            yield data[:-2]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def latency(target: Target, requests: int = 2000, warmup: int = 200) -> dict[str, float]:
    """Sequential non-streaming requests on one connection: p50/p95/p99 in seconds."""
    conn = await Connection.open(target)
    request = target.request(stream=False)
    samples: list[float] = []
    try:
        for i in range(warmup + requests):
            start = time.perf_counter()
            status, _ = await conn.call(request)
            elapsed = time.perf_counter() - start
            if status != 200:
                raise ConnectionError(f"{target.base_url} answered {status}")
            if i >= warmup:
                samples.append(elapsed)
    finally:
        conn.close()
    return {
        q: percentile(samples, v) for q, v in (("p50_s", 0.5), ("p95_s", 0.95), ("p99_s", 0.99))
    }


async def throughput(target: Target, concurrency: int = 10, seconds: float = 5.0) -> float:
    """Requests per second with ``concurrency`` connections, each sending back to back."""
    request = target.request(stream=False)
    conns = [await Connection.open(target) for _ in range(concurrency)]
    done = 0
    errors = 0

    async def worker(conn: Connection, until: float) -> None:
        nonlocal done, errors
        while time.perf_counter() < until:
            status, _ = await conn.call(request)
            if status == 200:
                done += 1
            else:
                errors += 1

    try:
        for conn in conns:  # warm every connection (and the proxy's upstream pool)
            await conn.call(request)
        start = time.perf_counter()
        await asyncio.gather(*(worker(c, start + seconds) for c in conns))
        elapsed = time.perf_counter() - start
    finally:
        for conn in conns:
            conn.close()
    if errors:
        raise ConnectionError(f"{target.base_url}: {errors} requests failed under load")
    return done / elapsed


async def streams(target: Target, concurrency: int = 20, rounds: int = 3) -> dict[str, float]:
    """``concurrency`` streams at once, ``rounds`` times: first-chunk delay p50/max (seconds),
    events per stream (min), and how many streams had chunks coalesced."""
    request = target.request(stream=True)
    timings: list[StreamTiming] = []
    for _ in range(rounds):
        conns = [await Connection.open(target) for _ in range(concurrency)]
        try:
            timings += await asyncio.gather(*(c.stream(request) for c in conns))
        finally:
            for conn in conns:
                conn.close()
    firsts = [t.first_chunk_s for t in timings]
    return {
        "first_chunk_p50_s": statistics.median(firsts),
        "first_chunk_max_s": max(firsts),
        "events_min": float(min(t.events for t in timings)),
        "coalesced_streams": float(sum(t.coalesced for t in timings)),
        "streams": float(len(timings)),
    }


async def first_answer(target: Target, deadline: float) -> float:
    """Poll with a fresh connection until a chat request answers 200; return
    ``time.perf_counter()`` then. Raises TimeoutError past ``deadline`` (perf_counter)."""
    request = target.request(stream=False)
    while time.perf_counter() < deadline:
        try:
            conn = await Connection.open(target)
            try:
                status, _ = await asyncio.wait_for(
                    conn.call(request), deadline - time.perf_counter()
                )
            finally:
                conn.close()
            if status == 200:
                return time.perf_counter()
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            pass
        await asyncio.sleep(0.01)
    raise TimeoutError(f"{target.base_url} did not answer a chat request in time")
