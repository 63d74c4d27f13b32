"""An exchange against a closed port; leases count requests and gate slots."""

from __future__ import annotations

import asyncio

import pytest

from modelyard.errors import RateLimited, UpstreamError
from modelyard.fleet.leases import Leases
from modelyard.gateway.exchange import Exchange
from modelyard.upstream import UpstreamPool
from tests.support.processes import free_port, wait_for


async def test_refused_connection_is_a_retryable_upstream_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/chat/completions"
    pool = UpstreamPool(connect_s=5.0)
    ended: list[Exchange] = []
    with pytest.raises(UpstreamError) as caught:
        await Exchange.open(pool, url, b"{}", first_byte_s=5.0, idle_s=5.0, on_end=ended.append)
    await pool.aclose()
    assert caught.value.message == "connect refused"
    assert ended == []  # nothing was opened, so nothing reports an ending


async def test_admission_caps_queues_and_refuses() -> None:
    leases = Leases(queue_size=1, retry_after_s=2)
    release = asyncio.Event()
    entered: list[int] = []

    async def request(n: int) -> None:
        lease = leases.take("m:01")
        try:
            await lease.slot(cap=1)
            entered.append(n)
            await release.wait()
        finally:
            lease.release()

    first = asyncio.ensure_future(request(1))
    await wait_for(lambda: entered == [1], 5, "the first request")
    second = asyncio.ensure_future(request(2))
    await wait_for(lambda: leases.queued("m:01") == 1, 5, "the second to queue")
    with pytest.raises(RateLimited) as caught:
        await request(3)
    assert caught.value.extra["retry_after"] == 2
    release.set()
    await asyncio.gather(first, second)
    assert entered == [1, 2]
    assert leases.active("m:01") == 0
    assert leases.counts == {}


async def test_a_cancelled_waiter_leaves_the_queue_and_loses_no_slot() -> None:
    leases = Leases(queue_size=4, retry_after_s=1)
    release = asyncio.Event()
    entered: list[int] = []

    async def request(n: int) -> None:
        lease = leases.take("m:01")
        try:
            await lease.slot(cap=1)
            entered.append(n)
            await release.wait()
        finally:
            lease.release()

    first = asyncio.ensure_future(request(1))
    await wait_for(lambda: entered == [1], 5, "the first request")
    gone = asyncio.ensure_future(request(2))
    third = asyncio.ensure_future(request(3))
    await wait_for(lambda: leases.queued("m:01") == 2, 5, "two waiters")
    gone.cancel()
    await wait_for(lambda: leases.queued("m:01") == 1, 5, "the cancelled one to leave")
    release.set()
    await asyncio.gather(first, third)
    assert entered == [1, 3]
    assert leases.active("m:01") == 0
    assert leases.counts == {}
    lease = leases.take("m:01")
    await lease.slot(cap=None)  # no cap: never waits
    assert leases.in_flight("m:01") == 1
    lease.release()
    lease.release()  # idempotent: counted down once
    assert leases.in_flight("m:01") == 0
