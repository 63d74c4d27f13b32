"""Deployment settings from the hardware: a memory budget and how many models may be loaded.

``suggest`` is a pure function over what the machine has; ``resolve`` lays the config file's
and the active profile's overrides over it (profile first, then config, then suggestion).

The rules, so a 16 GB card is not treated like a 96 GB one:

- With GPUs, models go to GPU memory: the budget is the GPU total less 10% (driver, display,
  fragmentation) and less the configured reserve.
- Without a GPU, models go to RAM: the budget is half the RAM less the reserve, leaving the
  other half to the system and the prompt-processing buffers.
- Models loaded at once: 1 below 12 GiB of budget, 2 below 24, 3 below 48, 4 below 96, then
  one more per further 32 GiB (a 96 GiB budget holds a 70B Q4 model and a few small ones).
  With several GPUs, at least one per GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from modelyard.routing.eviction import format_bytes

GIB = 1024**3
Source = Literal["suggested", "config", "profile"]
Layer = tuple[int | None, int | None]
_STEPS: tuple[tuple[int, int], ...] = ((12, 1), (24, 2), (48, 3), (96, 4))


@dataclass(frozen=True)
class Hardware:
    """What the machine has: RAM and each GPU's total memory, in bytes."""

    ram_bytes: int
    gpu_bytes: tuple[int, ...] = ()
    reserve_bytes: int = 0


@dataclass(frozen=True)
class Deployment:
    """Where models go, the memory they may use, how many may be loaded, and why."""

    device: Literal["gpu", "cpu"]
    memory_budget_bytes: int
    max_models_loaded: int
    reasons: tuple[str, ...] = ()
    source: Source = "suggested"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        return data


def models_for(budget_bytes: int) -> int:
    """How many models a budget holds, by the steps in the module docstring."""
    gib = budget_bytes / GIB
    for limit, count in _STEPS:
        if gib < limit:
            return count
    return 4 + int((gib - 96) // 32) + 1


def suggest(hardware: Hardware) -> Deployment:
    """The suggestion for ``hardware``. Never raises; a budget never goes below zero."""
    if hardware.gpu_bytes:
        total = sum(hardware.gpu_bytes)
        budget = max(int(total * 0.9) - hardware.reserve_bytes, 0)
        count = max(models_for(budget), len(hardware.gpu_bytes))
        gpus = ", ".join(format_bytes(b) for b in hardware.gpu_bytes)
        reasons = (
            f"{len(hardware.gpu_bytes)} GPU(s) with {gpus}: models go to GPU memory",
            f"budget {format_bytes(budget)}: 90% of {format_bytes(total)} less "
            f"{format_bytes(hardware.reserve_bytes)} reserve",
            f"{count} model(s) at once for a {format_bytes(budget)} budget",
        )
        return Deployment("gpu", budget, count, reasons)
    budget = max(hardware.ram_bytes // 2 - hardware.reserve_bytes, 0)
    count = models_for(budget)
    reasons = (
        "no GPU found: models run on the CPU from RAM",
        f"budget {format_bytes(budget)}: half of {format_bytes(hardware.ram_bytes)} RAM less "
        f"{format_bytes(hardware.reserve_bytes)} reserve",
        f"{count} model(s) at once for a {format_bytes(budget)} budget",
    )
    return Deployment("cpu", budget, count, reasons)


def resolve(
    suggested: Deployment,
    config: Layer,
    profile: Layer | None = None,
) -> Deployment:
    """Lay overrides over the suggestion. Each override is ``(budget bytes, max models)``;
    ``None`` parts keep the value below. ``source`` names the highest layer that set one."""
    budget, count = suggested.memory_budget_bytes, suggested.max_models_loaded
    source: Source = "suggested"
    reasons = list(suggested.reasons)
    layers: Sequence[tuple[Source, Layer | None]] = (
        ("config", config),
        ("profile", profile),
    )
    for name, layer in layers:
        if layer is None:
            continue
        if layer[0] is not None:
            budget, source = layer[0], name
            reasons.append(f"budget {format_bytes(budget)} set by the {name}")
        if layer[1] is not None:
            count, source = layer[1], name
            reasons.append(f"{count} model(s) at once set by the {name}")
    return Deployment(suggested.device, budget, count, tuple(reasons), source)


def hardware_of(ram_bytes: int, gpu_bytes: Sequence[int], reserve_bytes: int) -> Hardware:
    """The ``Hardware`` for a memory inventory's figures."""
    return Hardware(ram_bytes, tuple(gpu_bytes), reserve_bytes)
