"""Acquisition: from a routing candidate to an instance that is ready, leased and has a slot.

``Acquirer.acquire`` runs, in order: create an on-demand instance when the candidate names only
a model (one creation however many requests wait for it), take a lease (from then on no idle
unload or eviction can stop the instance), make it ready unless the current snapshot says it
is serving (``Fleet.ensure_ready``), and take one of its parallel slots (queueing, or
RateLimited when the queue is full). What it returns (``Held``) is released exactly once by
the caller; on any failure or cancellation inside, what was taken is released before it
raises. Sending is not done here (``gateway.exchange``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from modelyard.fleet.fleet import Fleet
from modelyard.fleet.instance import InstanceConfig, InstanceView
from modelyard.fleet.leases import Lease
from modelyard.gateway.call import Call
from modelyard.gateway.snapshot import Snapshot
from modelyard.routing.fallback import Candidate


@dataclass(slots=True)
class Held:
    """An instance ready for one request: its view and the lease (with a slot) to release."""

    view: InstanceView
    lease: Lease

    def release(self) -> None:
        self.lease.release()


class Acquirer:
    """See the module docstring. ``current`` gives the snapshot if still current (None once
    the fleet changed since); ``fresh`` gives an up-to-date one."""

    def __init__(
        self,
        fleet: Fleet,
        current: Callable[[], Snapshot | None],
        fresh: Callable[[], Snapshot],
    ) -> None:
        self._fleet = fleet
        self._leases = fleet.leases
        self._current = current
        self._fresh = fresh
        self._creating: dict[str, asyncio.Task[str]] = {}

    async def acquire(self, cand: Candidate, call: Call) -> Held:
        """Raises FleetError (cannot be made ready: StartFailed, InsufficientMemory...),
        EngineError, InstanceNotFound (deleted meanwhile), RateLimited, ModelNotFound."""
        instance_id = cand.instance_id
        if instance_id is None:
            call.loading = True
            instance_id = await self._create_for(cand.model_id)
        call.instance_id = instance_id
        lease = self._leases.take(instance_id)
        try:
            snap = self._current()
            view = snap.instances.get(instance_id) if snap is not None else None
            if view is None or view.state != "ready":
                call.loading = True
                view = await self._fleet.ensure_ready(instance_id)
                call.loading = False
            await lease.slot(view.parallel_slots)
        except BaseException:
            lease.release()
            raise
        return Held(view, lease)

    async def _create_for(self, model_id: str) -> str:
        """An instance of ``model_id`` to start: one new on-demand instance however many
        requests ask at once (they all wait on the same creation)."""
        task = self._creating.get(model_id)
        if task is None:
            task = asyncio.ensure_future(self._create(model_id))
            self._creating[model_id] = task
            task.add_done_callback(lambda t: self._created(model_id, t))
        return await asyncio.shield(task)

    def _created(self, model_id: str, task: asyncio.Task[str]) -> None:
        self._creating.pop(model_id, None)
        if not task.cancelled():
            task.exception()  # retrieved here, so a creation nobody waits for is not logged

    async def _create(self, model_id: str) -> str:
        """A persona-less instance: one created meanwhile, or a new on-demand one."""
        existing = [i for i in self._fresh().view.by_model.get(model_id, ()) if not i.persona]
        if existing:
            return existing[0].id
        created = await self._fleet.create(
            model_id, InstanceConfig(on_demand=True), actor="gateway"
        )
        return created[0].id

    def cancel(self) -> None:
        for task in self._creating.values():
            task.cancel()
