"""The memory budget: the one reader of the memory inventory, and the admission that acts on
``routing.eviction.plan_admission``.

``MemoryBudget`` keeps each instance's memory estimate (computed when its settings or the
catalog change, never on a read), which instances are admitted (their estimate counts against
the budget until their process stops), and the last inventory read. Everyone who wants the
inventory (the fleet, the gateway's routing view, ``/api/models/servers``, the advice routes)
asks it here. One admission decision runs at a time; the victims it names are stopped by the
caller's ``evict`` before the decision is taken again.

The deployment (``profiles.deployment``: a named profile or the suggestion, with the config's
and the active profile's overrides) reaches admission through ``govern``: the composition root
hands it a ``LimitsReader`` (inventory -> ``AdmissionLimits``: ``max_models_loaded`` and a
per-device budget cap) and a ``ModelOf`` (instance id -> model id, so instances of one model
count once). Until then only the inventory's budget is enforced, as before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from modelyard.engines.base import MemoryEstimate
from modelyard.errors import InsufficientMemory, ModelLimitReached
from modelyard.fleet.memory import MemoryInventory
from modelyard.routing.eviction import AdmissionLimits, RunningUse, plan_admission

InventoryReader = Callable[[], MemoryInventory]
RunningReader = Callable[[str], Sequence[RunningUse]]
"""``exclude_id -> uses``: every instance holding memory but ``exclude_id``."""
Evict = Callable[[str], Awaitable[None]]
LimitsReader = Callable[[MemoryInventory], AdmissionLimits]
"""The deployment's limits for an inventory; may block (reads the active profile)."""
ModelOf = Callable[[str], str | None]

_MAX_AGE_S = 1.0
_ATTEMPTS = 3


@dataclass(frozen=True)
class Room:
    """Memory for one more model, on the pool where there is most: ``free`` is the budget
    less what admitted instances hold; ``reclaimable`` adds what unpinned ones hold (they may
    be evicted when idle)."""

    free: int
    reclaimable: int


class MemoryBudget:
    """See the module docstring. With ``enforce`` false every instance is admitted (the
    inventory is still read for whoever asks)."""

    def __init__(self, read: InventoryReader, *, enforce: bool = True) -> None:
        self._read = read
        self._enforce = enforce
        self._last: MemoryInventory | None = None
        self._read_at = 0.0
        self._estimates: dict[str, MemoryEstimate] = {}
        self._pinned: dict[str, bool] = {}
        self._reserved: set[str] = set()
        self._lock = asyncio.Lock()
        self._limits: LimitsReader | None = None
        self._model_of: ModelOf | None = None

    @property
    def enforced(self) -> bool:
        return self._enforce

    def govern(self, limits: LimitsReader, model_of: ModelOf) -> None:
        """Enforce the deployment's ``limits`` from the next admission on."""
        self._limits, self._model_of = limits, model_of

    async def limits(self, inventory: MemoryInventory) -> AdmissionLimits:
        """The deployment's limits for ``inventory`` (none until ``govern``), read in a
        worker thread."""
        if self._limits is None:
            return AdmissionLimits()
        return await asyncio.to_thread(self._limits, inventory)

    # -- the inventory ----------------------------------------------------------------------

    def read_now(self) -> MemoryInventory:
        """Read the inventory (blocking: NVML, /proc) and keep it."""
        inventory = self._read()
        self._last, self._read_at = inventory, time.monotonic()
        return inventory

    async def inventory(self, max_age_s: float = _MAX_AGE_S) -> MemoryInventory:
        """The inventory, read again in a worker thread when older than ``max_age_s``."""
        last = self._last
        if last is None or time.monotonic() - self._read_at > max_age_s:
            last = await asyncio.to_thread(self.read_now)
        return last

    # -- estimates and reservations ---------------------------------------------------------

    def set_estimate(self, ident: str, estimate: MemoryEstimate | None, pinned: bool) -> None:
        if estimate is None:
            self._estimates.pop(ident, None)
        else:
            self._estimates[ident] = estimate
        self._pinned[ident] = pinned

    def estimate(self, ident: str) -> MemoryEstimate | None:
        return self._estimates.get(ident)

    def reserved(self, ident: str) -> bool:
        return ident in self._reserved

    def release(self, ident: str) -> None:
        """The instance's process stopped: its memory no longer counts."""
        self._reserved.discard(ident)

    def forget(self, ident: str) -> None:
        self.release(ident)
        self._estimates.pop(ident, None)
        self._pinned.pop(ident, None)

    def room(self) -> Room | None:
        """Room for one more model (None: no inventory read yet). No I/O."""
        inventory = self._last
        if inventory is None:
            return None
        pools: list[int | None] = [None, *(d.index for d in inventory.devices)]
        best: Room | None = None
        for pool in pools:
            held = pinned = 0
            for ident in self._reserved:
                estimate = self._estimates.get(ident)
                if estimate is not None and estimate.device == pool:
                    held += estimate.total
                    pinned += estimate.total if self._pinned.get(ident) else 0
            budget = inventory.budget(pool)
            room = Room(max(budget - held, 0), max(budget - pinned, 0))
            if best is None or room.reclaimable > best.reclaimable:
                best = room
        return best

    # -- admission --------------------------------------------------------------------------

    async def admit(
        self, ident: str, estimate: MemoryEstimate, running: RunningReader, evict: Evict
    ) -> None:
        """Reserve ``estimate`` for ``ident``, evicting what ``plan_admission`` names (idle,
        unpinned, least recently used first) through ``evict``. Returns at once when no budget
        is enforced or ``ident`` is already admitted. Raises InsufficientMemory saying what
        holds the memory, ModelLimitReached (one of those) naming the loaded models when
        ``max_models_loaded`` are loaded and none of them may be unloaded."""
        if not self._enforce or ident in self._reserved:
            return
        async with self._lock:
            self._estimates[ident] = estimate
            for _attempt in range(_ATTEMPTS):
                inventory = await self.inventory(max_age_s=0.0)
                limits = await self.limits(inventory)
                try:
                    budget = limits.budget(estimate.device, inventory.budget(estimate.device))
                    total = inventory.total(estimate.device)
                except KeyError as exc:
                    raise InsufficientMemory(f"cannot start {ident}: {exc.args[0]}") from None
                decision = plan_admission(
                    estimate,
                    budget,
                    self._with_models(running(ident)),
                    total_bytes=total,
                    reserve_bytes=inventory.reserve_bytes,
                    model_id=self._model(ident),
                    max_models_loaded=limits.max_models_loaded,
                )
                if not decision.admit:
                    message = f"cannot start {ident}: {decision.reason}"
                    if decision.over_model_limit:
                        raise ModelLimitReached(message)
                    raise InsufficientMemory(message)
                if not decision.evict:
                    self._reserved.add(ident)
                    return
                for victim in decision.evict:
                    await evict(victim)
            raise InsufficientMemory(f"cannot start {ident}: instances to evict became busy")

    def _model(self, ident: str) -> str | None:
        return self._model_of(ident) if self._model_of is not None else None

    def _with_models(self, uses: Sequence[RunningUse]) -> list[RunningUse]:
        return [replace(use, model_id=self._model(use.instance_id)) for use in uses]
