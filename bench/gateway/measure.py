"""Load figures of one OpenAI-compatible address: ``measure(base_url) -> dict``.

The same client (``peer_client``: raw keep-alive HTTP/1.1) drives every target, so figures of
a backend, the gateway in front of it and a peer proxy compare directly:

- ``p50_s``/``p95_s``/``p99_s``: non-streaming latency, one connection, back to back;
- ``rps``: requests per second over ``concurrency`` connections;
- ``first_chunk_p50_s``/``first_chunk_max_s``: time to the first SSE event with
  ``streams`` concurrent streams; ``events_min``, ``coalesced_streams`` (an HTTP chunk held
  more than one event); ``chunk_delays``: per stream, how late each token event arrived
  against the backend's schedule (event n due n x ``interval_s`` after the request was sent),
  compared across targets with ``added_delays``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from bench.gateway.peer_client import Connection, Target, latency, percentile, throughput

__all__ = ["latency", "measure", "percentile", "stream_figures", "throughput"]


async def _timed_stream(conn: Connection, request: bytes) -> tuple[float, list[float], int, bool]:
    """First-event delay, arrival times of event chunks after the request was sent, events,
    coalesced."""
    start = time.perf_counter()
    status, headers = await conn._head(request)
    if status != 200:
        raise ConnectionError(f"stream answered {status}")
    arrivals: list[float] = []
    events = 0
    coalesced = False
    async for chunk in conn._chunks(headers):
        n = chunk.count(b"data:")
        if n:
            arrivals.append(time.perf_counter() - start)
        events += n
        coalesced = coalesced or n > 1
    return arrivals[0], arrivals, events, coalesced


async def stream_figures(
    target: Target, concurrency: int, rounds: int, interval_s: float, chunks: int
) -> dict[str, Any]:
    """Figures of ``rounds`` x ``concurrency`` streams, and ``chunk_delays``: per stream, how
    late each token event came against the backend's schedule (event n due n x ``interval_s``
    after the request was sent), for ``added_delays``."""
    request = target.request(stream=True)
    firsts: list[float] = []
    delays: list[list[float]] = []
    events: list[int] = []
    coalesced = 0
    for _ in range(rounds):
        conns = [await Connection.open(target) for _ in range(concurrency)]
        try:
            results = await asyncio.gather(*(_timed_stream(c, request) for c in conns))
        finally:
            for conn in conns:
                conn.close()
        for first, arrivals, count, merged in results:
            firsts.append(first)
            events.append(count)
            coalesced += merged
            # The token events (not the usage event and [DONE] sent right after the last).
            delays.append([t - n * interval_s for n, t in enumerate(arrivals[:chunks])])
    return {
        "first_chunk_p50_s": statistics.median(firsts),
        "first_chunk_max_s": max(firsts),
        "events_min": float(min(events)),
        "coalesced_streams": float(coalesced),
        "streams": float(len(firsts)),
        "chunk_delays": delays,
    }


def added_delays(direct: list[list[float]], via: list[list[float]]) -> list[float]:
    """Per event: its delay through ``via`` less the direct median delay of the same event
    (the n-th of its stream), so a late first event counts in every later one."""
    width = max(len(d) for d in direct)
    baseline = [statistics.median(d[n] for d in direct if len(d) > n) for n in range(width)]
    return [t - baseline[min(n, width - 1)] for stream in via for n, t in enumerate(stream)]


def after_first(delays: list[list[float]]) -> list[list[float]]:
    """Each event's lateness counted from its stream's first event: what relaying a chunk
    adds, apart from the time to the first token (reported on its own)."""
    return [[d - stream[0] for d in stream[1:]] for stream in delays if stream]


def measure(
    base_url: str,
    *,
    model: str = "bench",
    api_key: str = "none",
    requests: int = 2000,
    warmup: int = 200,
    concurrency: int = 10,
    seconds: float = 5.0,
    streams: int = 20,
    rounds: int = 3,
    interval_s: float = 0.02,
    chunks: int = 64,
    big_streams: int = 0,
) -> dict[str, Any]:
    """Every figure of the module docstring for ``base_url``; ``big_streams`` > 0 adds one
    round of that many concurrent streams (``big_*`` figures)."""
    target = Target(base_url, api_key=api_key, model=model)

    async def run() -> dict[str, Any]:
        figures: dict[str, Any] = await latency(target, requests, warmup)
        figures["rps"] = await throughput(target, concurrency, seconds)
        figures.update(await stream_figures(target, streams, rounds, interval_s, chunks))
        if big_streams:
            big = await stream_figures(target, big_streams, 1, interval_s, chunks)
            figures.update({f"big_{k}": v for k, v in big.items()})
        return figures

    return asyncio.run(run())
