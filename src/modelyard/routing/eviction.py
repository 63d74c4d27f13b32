"""Memory admission: may a new instance start, and which idle instances must stop first.

A pure decision over frozen data. The fleet gathers what is running, asks ``plan_admission``,
then acts on the plan (stops the instances in ``evict`` in order, then starts the new one).

Rules:

- The new instance is admitted when it fits in what the budget leaves free.
- Otherwise idle (``in_flight == 0``), unpinned instances on the same device are evicted, least
  recently used first, and only as many as are needed.
- If evicting every evictable instance would still not be enough, the request is refused and
  nothing is evicted; the reason names what holds the memory.
- With ``AdmissionLimits.max_models_loaded``, at most that many distinct models are loaded at
  once (instances of one model count once, on every device). A new model over the limit
  evicts the least recently used model whose instances are all idle and unpinned, or is
  refused, naming the loaded models, when none is. The slot is decided first, then memory
  over what is left; ``AdmissionLimits`` also caps each device's budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelyard.engines.base import MemoryEstimate

_MIB = 1024 * 1024
_GIB = 1024 * _MIB


@dataclass(frozen=True)
class RunningUse:
    """One running (or starting) instance's hold on memory.

    ``bytes`` is what it holds on ``device`` (``None``: system RAM); ``last_used`` is any clock
    that only goes forward (the fleet uses ``time.monotonic()``): smaller is longer ago.
    """

    instance_id: str
    bytes: int
    device: int | None = None
    pinned: bool = False
    in_flight: int = 0
    last_used: float = 0.0
    model_id: str | None = None
    """The model the instance serves (``None``: the instance counts as its own model)."""

    @property
    def model(self) -> str:
        return self.model_id if self.model_id is not None else self.instance_id

    @property
    def evictable(self) -> bool:
        return not self.pinned and self.in_flight == 0


@dataclass(frozen=True)
class AdmissionPlan:
    """The decision. When ``admit`` is true, stop ``evict`` (in this order) and then start.

    When ``admit`` is false, ``evict`` is empty and ``reason`` says why, listing what uses the
    memory. ``reason`` is ``None`` when the instance is admitted.
    """

    admit: bool
    evict: tuple[str, ...] = ()
    reason: str | None = None
    over_model_limit: bool = False
    """Refused for ``max_models_loaded``, not for memory."""


@dataclass(frozen=True)
class AdmissionLimits:
    """What the deployment enforces beyond the inventory (``None``: no limit).

    ``gpu_budgets[i]`` caps GPU ``i``'s budget (GPUs past the tuple are not capped);
    ``ram_budget`` caps system RAM's.
    """

    max_models_loaded: int | None = None
    gpu_budgets: tuple[int, ...] = ()
    ram_budget: int | None = None

    def budget(self, device: int | None, inventory_budget: int) -> int:
        """The budget on ``device`` (``None``: RAM) given what the inventory leaves there."""
        if device is None:
            cap = self.ram_budget
        else:
            cap = self.gpu_budgets[device] if 0 <= device < len(self.gpu_budgets) else None
        return inventory_budget if cap is None else min(inventory_budget, cap)


def format_bytes(value: int) -> str:
    """``512 MiB`` below one GiB, ``1.2 GiB`` from there up (binary units, as ``free -h``)."""
    if abs(value) < _GIB:
        return f"{round(value / _MIB)} MiB"
    return f"{value / _GIB:.1f} GiB"


def plan_admission(
    request: MemoryEstimate,
    budget_bytes: int,
    running: Sequence[RunningUse],
    *,
    total_bytes: int | None = None,
    reserve_bytes: int = 0,
    model_id: str | None = None,
    max_models_loaded: int | None = None,
) -> AdmissionPlan:
    """Decide whether ``request`` may start within ``budget_bytes`` on ``request.device``.

    ``running`` may hold instances on every device; only those on ``request.device`` count
    against memory, all of them against ``max_models_loaded`` (``model_id`` is the new
    instance's model; ``None`` counts it as a new model). ``total_bytes`` and
    ``reserve_bytes`` only shape the refusal message ("8.0 GiB budget (8.5 GiB total - 512
    MiB reserve)"). Never raises.
    """
    slot = plan_model_slot(model_id, running, max_models_loaded)
    if not slot.admit:
        return slot
    left = [use for use in running if use.instance_id not in slot.evict]
    memory = _plan_memory(request, budget_bytes, left, total_bytes, reserve_bytes)
    if not memory.admit:
        return memory
    return AdmissionPlan(admit=True, evict=slot.evict + memory.evict)


def plan_model_slot(
    model_id: str | None, running: Sequence[RunningUse], max_models_loaded: int | None
) -> AdmissionPlan:
    """May one more instance of ``model_id`` be loaded under ``max_models_loaded`` distinct
    models (``None``: no limit)? Another instance of a loaded model needs no slot. Over the
    limit, every instance of the least recently used model whose instances are all idle and
    unpinned is named to evict (enough models to bring the count under the limit); when no
    model can go, the refusal names the loaded models and what keeps each. Never raises."""
    models: dict[str, list[RunningUse]] = {}
    for use in running:
        models.setdefault(use.model, []).append(use)
    if max_models_loaded is None or (model_id is not None and model_id in models):
        return AdmissionPlan(admit=True)
    excess = len(models) + 1 - max_models_loaded
    if excess <= 0:
        return AdmissionPlan(admit=True)
    evictable = sorted(
        (uses for uses in models.values() if all(use.evictable for use in uses)),
        key=lambda uses: (max(use.last_used for use in uses), uses[0].model),
    )
    if len(evictable) < excess:
        loaded = ", ".join(_describe_model(name, models[name]) for name in sorted(models))
        return AdmissionPlan(
            admit=False,
            reason=(
                f"{len(models)} model(s) loaded, the most max_models_loaded={max_models_loaded} "
                f"allows, and none can be unloaded (busy or pinned): {loaded}"
            ),
            over_model_limit=True,
        )
    victims = [use.instance_id for uses in evictable[:excess] for use in uses]
    return AdmissionPlan(admit=True, evict=tuple(victims))


def _plan_memory(
    request: MemoryEstimate,
    budget_bytes: int,
    running: Sequence[RunningUse],
    total_bytes: int | None,
    reserve_bytes: int,
) -> AdmissionPlan:
    here = [use for use in running if use.device == request.device]
    need = request.total
    free = budget_bytes - sum(use.bytes for use in here)
    if need <= free:
        return AdmissionPlan(admit=True)
    victims = _least_recently_used(here, need - free)
    if victims is None:
        return AdmissionPlan(
            admit=False,
            reason=_refusal(request, budget_bytes, free, here, total_bytes, reserve_bytes),
        )
    return AdmissionPlan(admit=True, evict=tuple(use.instance_id for use in victims))


def _least_recently_used(running: list[RunningUse], shortfall: int) -> list[RunningUse] | None:
    """The fewest idle, unpinned instances, oldest first, that free ``shortfall`` bytes."""
    candidates = sorted(
        (use for use in running if use.evictable),
        key=lambda use: (use.last_used, use.instance_id),
    )
    chosen: list[RunningUse] = []
    freed = 0
    for use in candidates:
        if freed >= shortfall:
            break
        chosen.append(use)
        freed += use.bytes
    return chosen if freed >= shortfall else None


def _refusal(
    request: MemoryEstimate,
    budget: int,
    free: int,
    running: list[RunningUse],
    total: int | None,
    reserve: int,
) -> str:
    where = "RAM" if request.device is None else f"GPU {request.device}"
    origin = f" ({format_bytes(total)} total - {format_bytes(reserve)} reserve)" if total else ""
    head = (
        f"needs {format_bytes(request.total)}, {format_bytes(max(free, 0))} free of "
        f"{format_bytes(budget)} {where} budget{origin}"
    )
    if request.total > budget:
        head += "; more than the whole budget"
    if not running:
        return f"{head}; nothing else is running"
    users = sorted(running, key=lambda use: (-use.bytes, use.instance_id))
    return f"{head}; in use: " + ", ".join(_describe(use) for use in users)


def _describe_model(name: str, uses: list[RunningUse]) -> str:
    states = sorted({_state(use) for use in uses})
    return f"{name} ({', '.join(states)})"


def _state(use: RunningUse) -> str:
    if use.pinned:
        return "pinned"
    if use.in_flight:
        return f"{use.in_flight} in flight"
    return "idle"


def _describe(use: RunningUse) -> str:
    return f"{use.instance_id} {format_bytes(use.bytes)} ({_state(use)})"
