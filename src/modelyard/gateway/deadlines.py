"""How long a client may take to send a request body: one coarse timer for every read.

A request whose body never completes (``Content-Length: 1000``, 9 bytes sent) held its task
and its connection for ever. ``ReadDeadlines.receive`` bounds each ``receive()`` of a body by
the deadline its request was given; past it the read raises BodyTimeout.

One timer serves every read, rather than one each: ``asyncio.timeout`` around every body read
cost more than the rest of the read (a timer handle in and out of the loop's heap per
request), and almost every body is already in when it is first read. A read registers its
task while it waits on ``receive``; a sweeper task, started by the first read and ending once
a tick finds none waiting, wakes every ``tick_s`` and cancels the reads past their deadline.
It only cancels a task registered as waiting, so the cancellation lands in that ``receive``
and nowhere else; the read turns it into BodyTimeout. A deadline is thus kept to within one
tick (at most a second). ``aclose`` stops the sweeper.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Message, Receive

from modelyard.errors import BodyTimeout

_MAX_TICK_S = 1.0


class ReadDeadlines:
    """See the module docstring. Owned by the Gateway; used on the event loop only."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._tick_s = min(_MAX_TICK_S, timeout_s / 4)
        self._waiting: dict[asyncio.Task[Any], float] = {}  # task -> deadline (loop time)
        self._expired: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def deadline(self) -> float:
        """The deadline for a body whose reading starts now (loop time)."""
        return asyncio.get_running_loop().time() + self.timeout_s

    async def receive(self, receive: Receive, deadline: float) -> Message:
        """``await receive()``, or BodyTimeout once ``deadline`` has passed while it waits.
        A cancellation from elsewhere is let through as it is."""
        task = asyncio.current_task()
        assert task is not None
        self._waiting[task] = deadline
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep())
        try:
            return await receive()
        except asyncio.CancelledError:
            if task not in self._expired or task.uncancel() > 0:
                raise
            raise BodyTimeout(
                f"the request body was not received within {self.timeout_s:g}s", param="body"
            ) from None
        finally:
            del self._waiting[task]
            self._expired.discard(task)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                await asyncio.sleep(self._tick_s)
                now = loop.time()
                for task, deadline in self._waiting.items():
                    if deadline <= now and task not in self._expired:
                        self._expired.add(task)
                        task.cancel()
                if not self._waiting:
                    return
        finally:
            self._sweeper = None

    async def aclose(self) -> None:
        """Stop the sweeper (reads still waiting are no longer timed)."""
        sweeper = self._sweeper
        if sweeper is not None:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
