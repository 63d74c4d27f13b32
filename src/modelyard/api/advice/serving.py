"""Advice logic: recommendations, compatibility checks and role selection.

The scoring is a pure function (``score_models``) over catalog records, memory estimates and
measured throughput, so it is tested without a server. The rest gathers those inputs.

Scores, 0-100, from two parts each scaled 0-1 over the models that fit:

- quality: parameter count (log scale), plus a tier bonus, less a penalty for quantizations
  under 4 bits;
- speed: measured tokens/s when the gateway has figures for the model, else the inverse of
  its memory estimate (a smaller model reads fewer bytes per token).

``speed`` weighs them 0.8/0.2, ``quality`` 0.2/0.8, ``balanced`` 0.5/0.5. Enabled models get 5
points over installed but disabled ones. Models that do not fit score 0 and are only listed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from modelyard.api.advice.protocol import (
    Candidate,
    CompatibilityOut,
    EstimateOut,
    Priority,
    RecommendOut,
    RoleChoice,
    RoleOut,
)
from modelyard.catalog.model import Model
from modelyard.engines.base import EngineArgs, LaunchSpec, MemoryEstimate
from modelyard.errors import ModelyardError, RoleNotFound
from modelyard.fleet.instance import InstanceView
from modelyard.fleet.memory import MemoryInventory
from modelyard.profiles.deployment import GIB
from modelyard.routing.eviction import (
    AdmissionLimits,
    RunningUse,
    format_bytes,
    plan_admission,
)
from modelyard.services import Services

_WEIGHTS: Mapping[Priority, tuple[float, float]] = {
    "speed": (0.8, 0.2),
    "balanced": (0.5, 0.5),
    "quality": (0.2, 0.8),
}
_TIER_BONUS = {"fast": 0.0, "balanced": 0.1, "powerful": 0.2}
_LOW_BITS = ("Q2", "Q3", "IQ1", "IQ2", "IQ3")
_HOLDING = ("starting", "ready", "stopping")


@dataclass(frozen=True)
class Sized:
    """One model with its memory estimate and measured throughput (None: no figures)."""

    model: Model
    memory_bytes: int
    tokens_per_s: float | None = None


def _quality(model: Model) -> float:
    params = model.parameters_b or 0.0
    value = math.log10(1 + params) + _TIER_BONUS.get(model.tier or "", 0.0)
    quant = (model.quantization or "").upper()
    if quant.startswith(_LOW_BITS):
        value -= 0.15
    return value


def _scaled(values: Sequence[float]) -> list[float]:
    low, high = min(values), max(values)
    if high - low < 1e-12:
        return [1.0 for _ in values]
    return [(v - low) / (high - low) for v in values]


def score_models(sized: Sequence[Sized], memory_bytes: int, priority: Priority) -> list[Candidate]:
    """Every model scored for ``memory_bytes`` and ``priority``, best first (pure)."""
    fitting = [s for s in sized if s.memory_bytes <= memory_bytes]
    scores: dict[str, float] = {}
    if fitting:
        quality = _scaled([_quality(s.model) for s in fitting])
        measured = [s for s in fitting if s.tokens_per_s]
        if len(measured) == len(fitting):
            speed = _scaled([s.tokens_per_s or 0.0 for s in fitting])
        else:
            speed = _scaled([-math.log(max(s.memory_bytes, 1)) for s in fitting])
        w_speed, w_quality = _WEIGHTS[priority]
        for item, q, v in zip(fitting, quality, speed, strict=True):
            bonus = 5.0 if item.model.enabled else 0.0
            scores[item.model.id] = round(95.0 * (w_speed * v + w_quality * q) + bonus, 2)
    out = [_candidate(s, memory_bytes, scores.get(s.model.id, 0.0)) for s in sized]
    return sorted(out, key=lambda c: (not c.fits, -c.score, c.model_id))


def _candidate(item: Sized, memory_bytes: int, score: float) -> Candidate:
    model = item.model
    fits = item.memory_bytes <= memory_bytes
    reasons = [
        f"needs about {format_bytes(item.memory_bytes)} of {format_bytes(memory_bytes)}"
        + ("" if fits else ": does not fit")
    ]
    if model.parameters_b:
        reasons.append(f"{model.parameters_b:g}B parameters, {model.quantization or '?'}")
    if model.tier:
        reasons.append(f"tier {model.tier}")
    if item.tokens_per_s:
        reasons.append(f"measured {item.tokens_per_s:.1f} tokens/s")
    reasons.append("enabled" if model.enabled else "installed, not enabled")
    return Candidate(
        model_id=model.id,
        display_name=model.display_name,
        enabled=model.enabled,
        tier=model.tier,
        parameters_b=model.parameters_b,
        quantization=model.quantization,
        memory_estimate_bytes=item.memory_bytes,
        fits=fits,
        score=score,
        tokens_per_s=item.tokens_per_s,
        reasons=reasons,
    )


def estimate(services: Services, model: Model, ctx: int | None = None) -> MemoryEstimate | None:
    """The engine's estimate for one instance of ``model`` at ``ctx``; None if it has none."""
    try:
        engine = services.engines.get(model.engine)
        spec = LaunchSpec("advice", model, 0, "advice", EngineArgs(ctx=ctx))
        return engine.estimate(spec)
    except ModelyardError:
        return None


def memory_of(services: Services, model: Model) -> int:
    found = estimate(services, model)
    if found is not None and found.total > 0:
        return found.total + found.host
    return model.memory_bytes or model.size_bytes


def recommend(
    services: Services, models: Sequence[Model], memory_gb: float, priority: Priority
) -> RecommendOut:
    """The best model for ``memory_gb`` and ``priority``, and the runners-up."""
    figures = services.figures.snapshot()["models"]
    usable = [m for m in models if m.error is None and not m.embedding]
    sized = [
        Sized(m, memory_of(services, m), (figures.get(m.id) or {}).get("tokens_per_s"))
        for m in usable
    ]
    budget = int(memory_gb * GIB)
    ranked = score_models(sized, budget, priority)
    best = ranked[0] if ranked and ranked[0].fits else None
    if best is not None:
        reasons = [f"best {priority} score among {sum(c.fits for c in ranked)} model(s) that fit"]
    elif usable:
        reasons = [f"no model fits in {memory_gb:g} GiB; the smallest is listed first"]
        ranked = sorted(ranked, key=lambda c: c.memory_estimate_bytes)
    else:
        reasons = ["the catalog holds no chat model; run a rescan or add a model folder"]
    return RecommendOut(
        memory_gb=memory_gb,
        priority=priority,
        recommended=best,
        reasons=reasons,
        alternatives=[c for c in ranked if c is not best][:5],
    )


def running_uses(services: Services, views: Sequence[InstanceView]) -> list[RunningUse]:
    """What running instances hold, with the device each one's engine puts it on."""
    uses = []
    for view in views:
        if view.state not in _HOLDING:
            continue
        device: int | None = None
        try:
            model = services.catalog.get(view.model_id)
            found = estimate(services, model, view.config.engine_args.ctx)
            device = found.device if found is not None else None
        except ModelyardError:
            pass
        uses.append(
            RunningUse(
                view.id,
                view.memory_estimate,
                device,
                pinned=view.config.pinned,
                in_flight=view.in_flight,
                last_used=view.last_used or 0.0,
                model_id=view.model_id,
            )
        )
    return uses


def compatibility(
    services: Services,
    model: Model,
    ctx: int | None,
    views: Sequence[InstanceView],
    inventory: MemoryInventory,
    limits: AdmissionLimits | None = None,
) -> CompatibilityOut:
    """Whether one more instance of ``model`` at ``ctx`` fits now, and what would have to
    stop (idle instances, least recently used first) if it does not, under the same
    deployment ``limits`` admission enforces (max_models_loaded, per-device budgets)."""
    limits = limits or AdmissionLimits()
    found = estimate(services, model, ctx)
    if found is None:
        found = MemoryEstimate(
            weights=model.memory_bytes or model.size_bytes, kv_cache=0, compute=0
        )
    warnings: list[str] = []
    used_ctx = ctx or services.settings.llamacpp.default_ctx
    if model.context_length and used_ctx > model.context_length:
        warnings.append(f"ctx {used_ctx} is above the model's {model.context_length}")
    try:
        budget = limits.budget(found.device, inventory.budget(found.device))
        total = inventory.total(found.device)
    except KeyError:
        budget = total = 0
        warnings.append(f"no GPU {found.device} on this machine")
    uses = running_uses(services, views)
    plan = plan_admission(
        found,
        budget,
        uses,
        total_bytes=total,
        reserve_bytes=inventory.reserve_bytes,
        model_id=model.id,
        max_models_loaded=limits.max_models_loaded,
    )
    held = sum(u.bytes for u in uses if u.device == found.device)
    return CompatibilityOut(
        model=model.id,
        ctx=used_ctx,
        fits=plan.admit and not plan.evict,
        fits_after_stopping=plan.admit,
        would_stop=list(plan.evict),
        estimate=EstimateOut(
            weights_bytes=found.weights,
            kv_cache_bytes=found.kv_cache,
            compute_bytes=found.compute,
            overhead_bytes=found.overhead,
            host_bytes=found.host,
            total_bytes=found.total,
            device="ram" if found.device is None else f"gpu{found.device}",
            measured=found.measured,
        ),
        budget_bytes=budget,
        free_bytes=max(budget - held, 0),
        reason=plan.reason,
        warnings=warnings,
    )


def select_by_role(
    services: Services, models: Sequence[Model], role: str, pinned: str | None
) -> RoleOut:
    """The model for ``role``: the active profile's choice (``pinned``) when it names one,
    else the enabled model with the highest priority for the role (ties: the smaller one).
    Raises RoleNotFound when no enabled model has the role."""
    with_role = [m for m in models if role in m.roles and m.error is None]
    choices = sorted(
        (
            RoleChoice(
                model_id=m.id,
                priority=m.roles[role],
                enabled=m.enabled,
                memory_estimate_bytes=memory_of(services, m),
            )
            for m in with_role
        ),
        key=lambda c: (not c.enabled, -(c.priority or 0), c.memory_estimate_bytes, c.model_id),
    )
    by_id = {m.id: m for m in models}
    if pinned is not None and pinned in by_id and by_id[pinned].enabled:
        model = by_id[pinned]
        return RoleOut(
            role=role,
            model=model.id,
            priority=model.roles.get(role),
            source="profile",
            memory_estimate_bytes=memory_of(services, model),
            candidates=choices,
        )
    enabled = [c for c in choices if c.enabled]
    if not enabled:
        raise RoleNotFound(f"no enabled model has the role '{role}'", param="role")
    best = enabled[0]
    return RoleOut(
        role=role,
        model=best.model_id,
        priority=best.priority,
        source="catalog",
        memory_estimate_bytes=best.memory_estimate_bytes,
        candidates=choices,
    )
