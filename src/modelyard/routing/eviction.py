"""Memory admission: may a new instance start, and which idle instances must stop first.

A pure decision over frozen data. The fleet gathers what is running, asks ``plan_admission``,
then acts on the plan (stops the instances in ``evict`` in order, then starts the new one).

Rules:

- The new instance is admitted when it fits in what the budget leaves free.
- Otherwise idle (``in_flight == 0``), unpinned instances on the same device are evicted, least
  recently used first, and only as many as are needed.
- If evicting every evictable instance would still not be enough, the request is refused and
  nothing is evicted; the reason names what holds the memory.
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
) -> AdmissionPlan:
    """Decide whether ``request`` may start within ``budget_bytes`` on ``request.device``.

    ``running`` may hold instances on every device; only those on ``request.device`` count.
    ``total_bytes`` and ``reserve_bytes`` only shape the refusal message
    ("8.0 GiB budget (8.5 GiB total - 512 MiB reserve)"). Never raises.
    """
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


def _describe(use: RunningUse) -> str:
    if use.pinned:
        state = "pinned"
    elif use.in_flight:
        state = f"{use.in_flight} in flight"
    else:
        state = "idle"
    return f"{use.instance_id} {format_bytes(use.bytes)} ({state})"
