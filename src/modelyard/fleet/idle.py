"""Idle unloading: stop instances that have served nothing for their ``idle_ttl``.

``IdleUnloader.run`` is one background task. Idle means ready, no lease out, and no lease
taken or released for ``idle_ttl`` seconds (nor since it became ready). The stop is posted
with a condition its owner checks when it takes the stop, so a request that took a lease in
the meantime keeps the instance (the race behind llama-swap's issue #946). An instance whose
plan can sleep (vLLM sleep mode) is put to sleep instead, and stays desired running: the next
request wakes it in a second instead of a full load; when the sleep call fails it is stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from modelyard.fleet.configs import InstanceConfigs
from modelyard.fleet.leases import Leases
from modelyard.fleet.process import State
from modelyard.fleet.supervision import Supervisor

Background = Callable[[Coroutine[Any, Any, Any]], None]


class IdleUnloader:
    def __init__(self, configs: InstanceConfigs, supervisor: Supervisor, leases: Leases) -> None:
        self._configs = configs
        self._supervisor = supervisor
        self._leases = leases
        self._unloading: set[str] = set()

    def idle_for(self, ident: str) -> float:
        """Seconds since the instance became ready or was last used, whichever is later."""
        status = self._supervisor.status(ident)
        if status.ready_at is None:
            return 0.0
        since_ready = time.time() - status.ready_at
        last_used = self._leases.last_used(ident)
        if last_used is None:
            return since_ready
        return min(since_ready, time.monotonic() - last_used)

    def _interval(self) -> float:
        ttls = [r.config.idle_ttl for r in self._configs.all() if r.config.idle_ttl]
        return min(1.0, max(0.02, min(ttls) / 4)) if ttls else 1.0

    async def run(self, background: Background) -> None:
        """Check every instance each interval (a quarter of the smallest TTL, 20 ms to 1 s),
        unloading in ``background`` tasks. Runs until cancelled."""
        while True:
            await asyncio.sleep(self._interval())
            for record in self._configs.all():
                ttl = record.config.idle_ttl
                ident = record.id
                if ttl is None or ident in self._unloading or self._leases.in_flight(ident):
                    continue
                if self._supervisor.status(ident).state != State.READY:
                    continue
                if self.idle_for(ident) >= ttl:
                    self._unloading.add(ident)
                    background(self._unload(ident, ttl))

    async def _unload(self, ident: str, ttl: float) -> None:
        def still_idle() -> bool:
            return self._leases.in_flight(ident) == 0 and self.idle_for(ident) >= ttl

        try:
            plan = self._supervisor.plan(ident)
            if plan is not None and plan.sleep is not None:
                status = await self._supervisor.sleep(ident, only_if=still_idle)
                if status.state != State.READY or not still_idle():
                    if status.state == State.SLEEPING:
                        log = self._supervisor.log(ident)
                        if log is not None:
                            log.note(f"put to sleep after {ttl:g}s idle")
                    return
            status = await self._supervisor.stop(ident, only_if=still_idle)
            if status.state == State.STOPPED:
                log = self._supervisor.log(ident)
                if log is not None:
                    log.note(f"unloaded after {ttl:g}s idle")
                await self._configs.set_desired(ident, "stopped", actor="fleet")
        finally:
            self._unloading.discard(ident)
