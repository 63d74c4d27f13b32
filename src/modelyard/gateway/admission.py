"""Per-instance admission: at most ``cap`` requests at a backend, a bounded queue behind.

An instance serves ``cap`` requests at once (its parallel slots); up to ``queue`` more wait
in arrival order; the next one is refused at once with RateLimited (429, ``Retry-After``).
Waiters are served first-come first-served. A waiter cancelled while queued (its client left)
leaves the queue without taking a slot; a slot handed to a waiter that was cancelled in the
same instant is passed on, so no slot is ever lost.

One ``Admission`` belongs to the gateway and is used from the event loop only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from modelyard.errors import RateLimited


@dataclass
class _Gate:
    cap: int
    active: int = 0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)


class Admission:
    """The gates of every instance, created on first use."""

    def __init__(self, queue_size: int, retry_after_s: int) -> None:
        self._queue = queue_size
        self._retry_after = retry_after_s
        self._gates: dict[str, _Gate] = {}

    def active(self) -> dict[str, int]:
        """Requests holding a slot, per instance."""
        return {k: g.active for k, g in self._gates.items() if g.active}

    def queued(self, instance_id: str) -> int:
        gate = self._gates.get(instance_id)
        return len(gate.waiters) if gate else 0

    @asynccontextmanager
    async def slot(self, instance_id: str, cap: int | None) -> AsyncIterator[None]:
        """Hold one of ``instance_id``'s slots for the body of the ``async with``.

        ``cap`` ``None`` means no limit. Blocks while the slots are taken and the queue has
        room; raises RateLimited when the queue is full.
        """
        if cap is None:
            yield
            return
        gate = self._gates.get(instance_id)
        if gate is None:
            gate = self._gates[instance_id] = _Gate(cap)
        gate.cap = cap
        if gate.active < gate.cap and not gate.waiters:
            gate.active += 1
        else:
            await self._wait(instance_id, gate)
        try:
            yield
        finally:
            self._release(gate)

    async def _wait(self, instance_id: str, gate: _Gate) -> None:
        if len(gate.waiters) >= self._queue:
            raise RateLimited(
                f"instance {instance_id} is busy: {gate.active} running and "
                f"{len(gate.waiters)} queued",
                retry_after=self._retry_after,
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        gate.waiters.append(waiter)
        try:
            await waiter  # _release counted us in before waking us
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release(gate)  # woken and cancelled at once: pass the slot on
            else:
                with contextlib.suppress(ValueError):  # already popped by _release
                    gate.waiters.remove(waiter)
            raise

    @staticmethod
    def _release(gate: _Gate) -> None:
        gate.active -= 1
        while gate.waiters and gate.active < gate.cap:
            waiter = gate.waiters.popleft()
            if not waiter.done():
                gate.active += 1
                waiter.set_result(None)
