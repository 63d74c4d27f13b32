"""The event bus: fan-out, publishing from other threads, and slow subscribers."""

from __future__ import annotations

import asyncio

from modelyard.events import EventBus


async def test_every_subscriber_sees_events_published_after_it_joined() -> None:
    bus = EventBus()
    bus.publish("before", {})
    async with bus.subscribe() as one, bus.subscribe() as two:
        bus.publish("a", {"n": 1})
        await asyncio.to_thread(bus.publish, "b", {"n": 2})
        for sub in (one, two):
            first, second = await sub.get(5), await sub.get(5)
            assert first is not None and second is not None
            assert (first.kind, second.kind) == ("a", "b")
            assert second.id == first.id + 1
        assert await one.get(0.01) is None
    assert bus.subscribers == 0


async def test_a_slow_subscriber_loses_the_oldest_and_is_told_how_many() -> None:
    bus = EventBus(queue_size=2)
    async with bus.subscribe() as sub:
        for n in range(5):
            bus.publish("tick", {"n": n})
        got = [await sub.get(5) for _ in range(3)]
    assert [(e.kind, e.data) for e in got if e] == [
        ("dropped", {"count": 3}),
        ("tick", {"n": 3}),
        ("tick", {"n": 4}),
    ]
