"""Leases: the one count of requests at each instance, and its admission gate.

Every request the gateway sends to an instance holds a ``Lease`` from the moment it picks the
instance until its answer is over: while it waits for the instance to become ready, while it
queues for a slot and while the backend answers. ``Leases`` is the single source that every
reader uses: balancing (least busy), idle unloading and eviction (never stop an instance with
a lease out), the ``/health`` figures and the ``modelyard_in_flight`` gauge.

A lease may also hold one of the instance's parallel slots (``Lease.slot``): at most ``cap``
requests at a backend at once, up to ``queue_size`` more waiting in arrival order, the next one
refused at once with RateLimited (429, ``Retry-After``). A waiter cancelled while queued leaves
the queue without taking a slot; a slot handed to a waiter cancelled in the same instant is
passed on, so no slot is ever lost.

Used from the event loop's thread only; nothing here blocks except ``Lease.slot`` while queued.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from modelyard.errors import RateLimited


@dataclass(slots=True)
class _Gate:
    cap: int
    active: int = 0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)


class Lease:
    """One request's hold on one instance. ``release`` is idempotent and synchronous, so a
    cancellation can never land half-way through it."""

    __slots__ = ("_gate", "_leases", "_released", "instance_id")

    def __init__(self, leases: Leases, instance_id: str) -> None:
        self._leases = leases
        self.instance_id = instance_id
        self._gate: _Gate | None = None
        self._released = False

    async def slot(self, cap: int | None) -> None:
        """Take one of the instance's ``cap`` slots (``None``: no limit), queueing while they
        are taken. Raises RateLimited when the queue is full. At most one slot per lease."""
        if cap is None or self._gate is not None:
            return
        self._gate = await self._leases._take_slot(self.instance_id, cap)

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        if self._gate is not None:
            _give_back(self._gate)
        self._leases._end(self.instance_id)


class Leases:
    """Every instance's leases. See the module docstring."""

    def __init__(self, queue_size: int, retry_after_s: int) -> None:
        self._queue = queue_size
        self._retry_after = retry_after_s
        self._counts: dict[str, int] = {}
        self._last_used: dict[str, float] = {}
        self._gates: dict[str, _Gate] = {}

    def take(self, instance_id: str) -> Lease:
        """A lease on ``instance_id``, counted at once; release it when the request ends."""
        counts = self._counts
        counts[instance_id] = counts.get(instance_id, 0) + 1
        self._last_used[instance_id] = time.monotonic()
        return Lease(self, instance_id)

    # -- reading ----------------------------------------------------------------------------

    @property
    def counts(self) -> Mapping[str, int]:
        """Leases out per instance (absent: none). A live read-only view: do not keep it
        across an ``await`` expecting it frozen."""
        return self._counts

    def in_flight(self, instance_id: str) -> int:
        return self._counts.get(instance_id, 0)

    def last_used(self, instance_id: str) -> float | None:
        """``time.monotonic()`` of the last lease taken or released; None before any."""
        return self._last_used.get(instance_id)

    def active(self, instance_id: str) -> int:
        """Leases holding a slot."""
        gate = self._gates.get(instance_id)
        return gate.active if gate else 0

    def queued(self, instance_id: str) -> int:
        gate = self._gates.get(instance_id)
        return len(gate.waiters) if gate else 0

    def forget(self, instance_id: str) -> None:
        """The instance is gone: drop its last-use time (leases still out end normally)."""
        self._last_used.pop(instance_id, None)
        gate = self._gates.get(instance_id)
        if gate is not None and not gate.active and not gate.waiters:
            del self._gates[instance_id]

    # -- internals --------------------------------------------------------------------------

    def _end(self, instance_id: str) -> None:
        left = self._counts.get(instance_id, 1) - 1
        if left > 0:
            self._counts[instance_id] = left
        else:
            self._counts.pop(instance_id, None)
        self._last_used[instance_id] = time.monotonic()

    async def _take_slot(self, instance_id: str, cap: int) -> _Gate:
        gate = self._gates.get(instance_id)
        if gate is None:
            gate = self._gates[instance_id] = _Gate(cap)
        gate.cap = cap
        if gate.active < gate.cap and not gate.waiters:
            gate.active += 1
            return gate
        if len(gate.waiters) >= self._queue:
            raise RateLimited(
                f"instance {instance_id} is busy: {gate.active} running and "
                f"{len(gate.waiters)} queued",
                retry_after=self._retry_after,
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        gate.waiters.append(waiter)
        try:
            await waiter  # _give_back counted us in before waking us
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                _give_back(gate)  # woken and cancelled at once: pass the slot on
            elif waiter in gate.waiters:
                gate.waiters.remove(waiter)
            raise
        return gate


def _give_back(gate: _Gate) -> None:
    gate.active -= 1
    while gate.waiters and gate.active < gate.cap:
        waiter = gate.waiters.popleft()
        if not waiter.done():
            gate.active += 1
            waiter.set_result(None)
