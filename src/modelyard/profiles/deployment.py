"""Deployment from the hardware: a named profile, a memory budget per device, how many models
may be loaded, and the context and parallel slots that size implies.

``PROFILES`` are the named deployment profiles for common memory sizes. ``pick`` chooses the
largest that fits the GPUs; ``suggest`` turns the pick into a ``Deployment``; ``resolve``
lays the config file's and then the active profile's ``Override`` over it. All pure.

The rules, so a 16 GB card is not treated like a 96 GB one:

- A GPU profile fits when the machine has at least its number of GPUs with at least 90% of
  its size each (cards report less than the label: an L4 "24 GB" is 22.5 GiB). Largest total
  first: ``gpu-96gb``, ``gpu-2x16gb``, ``gpu-24gb``, ``gpu-16gb``. No GPU: ``cpu``.
- With GPUs, models go to GPU memory: each GPU's budget is 90% of its memory (driver,
  display, fragmentation) less the reserve. A profile set by hand also caps each GPU at 90%
  of the profile's size (``gpu-16gb`` on a 24 GB card leaves 8 GB to other programs).
- Without a GPU, models go to RAM: the budget is half the RAM less the reserve, leaving the
  other half to the system and the prompt-processing buffers; as many models as
  ``models_for`` that budget (RAM sizes vary too much for one number).
- GPUs that fit no named profile (an 8 GB card) keep the budget above, and as many models as
  ``models_for`` the budget: 1 below 12 GiB, 2 below 24, 3 below 48, 4 below 96, then one
  more per further 32 GiB; at least one per GPU.
- Overrides: a layer naming ``profile`` starts over from that profile; its
  ``memory_budget_bytes`` (the whole budget, shared equally by the devices) and
  ``max_models_loaded`` then replace the figures below them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from modelyard.errors import ValidationFailed
from modelyard.routing.eviction import AdmissionLimits, format_bytes
from modelyard.settings import DeploymentProfileName

GIB = 1024**3
Source = Literal["suggested", "config", "profile"]
_STEPS: tuple[tuple[int, int], ...] = ((12, 1), (24, 2), (48, 3), (96, 4))
_FIT = 0.9
_USABLE = 0.9


@dataclass(frozen=True)
class Hardware:
    """What the machine has: RAM and each GPU's total memory, in bytes."""

    ram_bytes: int
    gpu_bytes: tuple[int, ...] = ()
    reserve_bytes: int = 0


@dataclass(frozen=True)
class DeploymentProfile:
    """A named deployment for a memory size: ``gpus`` of ``gpu_bytes`` each (0: CPU)."""

    name: DeploymentProfileName
    gpus: int
    gpu_bytes: int
    max_models_loaded: int | None  # None: ``models_for`` the budget
    ctx: int
    parallel: int
    description: str

    def fits(self, hardware: Hardware) -> bool:
        """Whether the machine has the GPUs this profile is for (``cpu`` fits any machine)."""
        big = [b for b in hardware.gpu_bytes if b >= self.gpu_bytes * _FIT]
        return len(big) >= self.gpus

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: tuple[DeploymentProfile, ...] = (
    DeploymentProfile(
        "gpu-96gb", 1, 96 * GIB, 4, 32768, 4, "one 96 GB card: a large model and small ones"
    ),
    DeploymentProfile("gpu-2x16gb", 2, 16 * GIB, 2, 8192, 2, "two 16 GB cards: a model on each"),
    DeploymentProfile("gpu-24gb", 1, 24 * GIB, 2, 16384, 2, "one 24 GB card: two mid models"),
    DeploymentProfile(
        "gpu-16gb", 1, 16 * GIB, 2, 8192, 2, "one 16 GB card: one 8B model, or two small ones"
    ),
    DeploymentProfile("cpu", 0, 0, None, 4096, 1, "no GPU: small models from RAM"),
)


@dataclass(frozen=True)
class Override:
    """One layer of overrides (config file or active profile); ``None`` keeps the value below."""

    profile: str | None = None
    memory_budget_bytes: int | None = None
    max_models_loaded: int | None = None


@dataclass(frozen=True)
class Deployment:
    """Where models go, the memory they may use (in all and per device: per GPU, or RAM on
    a CPU deployment), how many may be loaded, the context and slots implied, and why.
    ``name`` is the deployment profile (``None``: none fits, figures from the hardware)."""

    device: Literal["gpu", "cpu"]
    memory_budget_bytes: int
    max_models_loaded: int
    reasons: tuple[str, ...] = ()
    source: Source = "suggested"
    name: DeploymentProfileName | None = None
    device_budgets: tuple[int, ...] = ()
    ctx: int = 4096
    parallel: int = 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        data["device_budgets"] = list(self.device_budgets)
        return data

    def limits(self) -> AdmissionLimits:
        """What admission enforces for this deployment."""
        if self.device == "cpu":
            ram = self.device_budgets[0] if self.device_budgets else None
            return AdmissionLimits(self.max_models_loaded, ram_budget=ram)
        return AdmissionLimits(self.max_models_loaded, gpu_budgets=self.device_budgets)


def named(name: str) -> DeploymentProfile:
    """The deployment profile called ``name``. Raises ValidationFailed listing the names."""
    for profile in PROFILES:
        if profile.name == name:
            return profile
    known = ", ".join(p.name for p in PROFILES)
    raise ValidationFailed(f"no deployment profile {name!r}; known: {known}", param="profile")


def models_for(budget_bytes: int) -> int:
    """How many models a budget holds, by the steps in the module docstring."""
    gib = budget_bytes / GIB
    for limit, count in _STEPS:
        if gib < limit:
            return count
    return 4 + int((gib - 96) // 32) + 1


def pick(hardware: Hardware) -> tuple[DeploymentProfile | None, str]:
    """The largest profile that fits ``hardware``, and why; ``None`` for GPUs that fit none."""
    gpus = ", ".join(format_bytes(b) for b in hardware.gpu_bytes)
    if not hardware.gpu_bytes:
        return named("cpu"), "no GPU found: profile cpu, models run on the CPU from RAM"
    for profile in PROFILES:
        if profile.gpus and profile.fits(hardware):
            return profile, (
                f"{len(hardware.gpu_bytes)} GPU(s) with {gpus}: profile {profile.name}, "
                f"the largest that fits ({profile.description})"
            )
    return None, f"{len(hardware.gpu_bytes)} GPU(s) with {gpus}: no named profile fits"


def suggest(hardware: Hardware) -> Deployment:
    """The deployment for ``hardware`` as picked. Never raises; budgets never go below 0."""
    profile, why = pick(hardware)
    if profile is not None:
        return _from_profile(profile, hardware, "suggested", (why,), cap=False)
    budgets = _gpu_budgets(hardware, None)
    budget = sum(budgets)
    count = max(models_for(budget), len(budgets))
    reasons = (
        why,
        f"budget {format_bytes(budget)}: 90% of each GPU less "
        f"{format_bytes(hardware.reserve_bytes)} reserve",
        f"{count} model(s) at once for a {format_bytes(budget)} budget",
    )
    return Deployment("gpu", budget, count, reasons, device_budgets=budgets, ctx=4096)


def resolve(
    hardware: Hardware, config: Override | None = None, profile: Override | None = None
) -> Deployment:
    """The suggestion with ``config`` and then ``profile`` laid over it (see the module
    docstring); ``source`` names the highest layer that set something. Raises
    ValidationFailed for an unknown profile name (settings and the profile schema check
    names first)."""
    deployment = suggest(hardware)
    layers: Sequence[tuple[Source, Override | None]] = (("config", config), ("profile", profile))
    for source, layer in layers:
        if layer is not None:
            deployment = _lay(deployment, hardware, source, layer)
    return deployment


def _lay(base: Deployment, hardware: Hardware, source: Source, layer: Override) -> Deployment:
    found = base
    if layer.profile is not None:
        chosen = named(layer.profile)
        why = f"profile {chosen.name} set by the {source} ({chosen.description})"
        found = _from_profile(chosen, hardware, source, (*base.reasons, why), cap=True)
    if layer.memory_budget_bytes is not None:
        total = layer.memory_budget_bytes
        shares = max(len(found.device_budgets), 1)
        found = replace(
            found,
            memory_budget_bytes=total,
            device_budgets=(total // shares,) * shares,
            source=source,
            reasons=(*found.reasons, f"budget {format_bytes(total)} set by the {source}"),
        )
    if layer.max_models_loaded is not None:
        count = layer.max_models_loaded
        found = replace(
            found,
            max_models_loaded=count,
            source=source,
            reasons=(*found.reasons, f"{count} model(s) at once set by the {source}"),
        )
    return found


def _from_profile(
    profile: DeploymentProfile,
    hardware: Hardware,
    source: Source,
    reasons: tuple[str, ...],
    *,
    cap: bool,
) -> Deployment:
    reserve = format_bytes(hardware.reserve_bytes)
    if profile.gpus == 0:
        budget = max(hardware.ram_bytes // 2 - hardware.reserve_bytes, 0)
        how = f"half of {format_bytes(hardware.ram_bytes)} RAM less {reserve} reserve"
        budgets: tuple[int, ...] = (budget,)
        device: Literal["gpu", "cpu"] = "cpu"
    else:
        budgets = _gpu_budgets(hardware, profile.gpu_bytes if cap else None)
        budget = sum(budgets)
        how = f"90% of each GPU less {reserve} reserve"
        if cap:
            how += f", at most {format_bytes(int(profile.gpu_bytes * _USABLE))} per GPU"
        if not budgets:
            how += "; no GPU found, so no GPU budget applies"
        device = "gpu"
    count = profile.max_models_loaded or models_for(budget)
    return Deployment(
        device,
        budget,
        count,
        (
            *reasons,
            f"budget {format_bytes(budget)}: {how}",
            f"{count} model(s) at once, ctx {profile.ctx}, "
            f"{profile.parallel} parallel slot(s) for {profile.name}",
        ),
        source,
        profile.name,
        budgets,
        profile.ctx,
        profile.parallel,
    )


def _gpu_budgets(hardware: Hardware, cap_bytes: int | None) -> tuple[int, ...]:
    budgets = []
    for size in hardware.gpu_bytes:
        usable = int(min(size, cap_bytes if cap_bytes is not None else size) * _USABLE)
        budgets.append(max(usable - hardware.reserve_bytes, 0))
    return tuple(budgets)


def hardware_of(ram_bytes: int, gpu_bytes: Sequence[int], reserve_bytes: int) -> Hardware:
    """The ``Hardware`` for a memory inventory's figures."""
    return Hardware(ram_bytes, tuple(gpu_bytes), reserve_bytes)
