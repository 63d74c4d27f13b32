"""State-change events for the dashboard: an in-process publish/subscribe bus.

One ``EventBus`` hangs off the services. Anyone may ``publish`` from any thread (a rescan
reports progress from a worker thread; the fleet from the event loop). Each subscriber has
its own bounded queue on its own event loop; a subscriber that falls behind loses its oldest
events and is told how many with a ``dropped`` event, so one slow client never holds up the
publishers or the other clients.

Kinds published today: ``instance.status``, ``catalog.rescan.progress``,
``catalog.rescan.done``, ``profile.activated``, ``catalog.changed``, ``instance.changed``,
``profile.changed``, ``preset.changed``.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """One state change. ``id`` increases by one per published event, across kinds."""

    id: int
    kind: str
    data: dict[str, Any]
    at: float = field(default_factory=time.time)


class Subscription:
    """One subscriber's queue. Read with ``get`` on the loop that subscribed."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self._loop = loop
        self._items: deque[Event] = deque()
        self._size = size
        self._ready = asyncio.Event()
        self._dropped = 0

    def _offer(self, event: Event) -> None:
        # Runs on the subscriber's loop only (see EventBus.publish), so no lock is needed.
        if len(self._items) >= self._size:
            self._items.popleft()
            self._dropped += 1
        self._items.append(event)
        self._ready.set()

    async def get(self, within_s: float | None = None) -> Event | None:
        """The next event, waiting up to ``within_s`` seconds (None: forever); None after that.
        After losing events to a full queue, first returns a ``dropped`` event with the count."""
        if not self._items:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), within_s)
            except TimeoutError:
                return None
        if self._dropped:
            count, self._dropped = self._dropped, 0
            return Event(id=self._items[0].id - 1, kind="dropped", data={"count": count})
        return self._items.popleft()


class EventBus:
    """Fan-out of events to subscribers. Thread-safe; holds no event once delivered."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[Subscription] = set()
        self._ids = itertools.count(1)
        self._queue_size = queue_size

    def publish(self, kind: str, data: dict[str, Any]) -> Event:
        """Deliver to every current subscriber without blocking; returns the event.

        Safe from any thread. A subscriber whose loop has closed is skipped.
        """
        with self._lock:
            event = Event(id=next(self._ids), kind=kind, data=data)
            subscribers = list(self._subscribers)
        for sub in subscribers:
            try:
                sub._loop.call_soon_threadsafe(sub._offer, event)
            except RuntimeError:  # that loop is closed: its subscriber is gone
                self._discard(sub)
        return event

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """A subscription for the block's duration; events published before it are not seen."""
        sub = Subscription(asyncio.get_running_loop(), self._queue_size)
        with self._lock:
            self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._discard(sub)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def _discard(self, sub: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(sub)
