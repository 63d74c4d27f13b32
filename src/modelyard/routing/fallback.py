"""The ordered candidates for one request: the model's instances, then its fallback chain.

Pure. For each model, in order: an instance whose cooldown has ended (its one probe), the
healthy ready instances in balancing order, instances already starting, instances to start
(``on_demand`` ones first), and last the ready instances still in cooldown (tried only when
everything else failed). A model with no instance at all gets one ``create`` candidate.

A persona (an instance's system prompt) applies only when the request names that instance:
its id or its display name, which pin that one instance (falling back elsewhere would drop the
persona). A request naming the model (or ``auto``, a tier, a role that resolves to it) goes to
its instances without a persona; when it has none, to a new one (``create``), never to a
persona's voice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from modelyard.routing.balance import Strategy, order
from modelyard.routing.health import HEALTHY, Health, HealthPolicy, verdict
from modelyard.routing.resolve import ResolveConfig, Resolved, resolve
from modelyard.routing.view import InstanceInfo, RoutingView

Action = Literal["forward", "start", "create"]


@dataclass(frozen=True)
class Candidate:
    """One place to try. ``forward``: ready now; ``start``: ask the fleet to make it ready
    first; ``create``: ask the fleet for a new instance of ``model_id`` (``instance_id`` is
    then ``None``). ``probe`` marks the one request let through after a cooldown.
    """

    model_id: str
    instance_id: str | None
    action: Action
    reason: str
    probe: bool = False
    fallback: bool = False


@dataclass(frozen=True)
class PlanConfig:
    strategy: Strategy = "least_loaded"
    fallbacks: Mapping[str, Sequence[str]] | None = None
    policy: HealthPolicy = field(default_factory=HealthPolicy)
    resolve: ResolveConfig = field(default_factory=ResolveConfig)


def candidates(
    resolved: Resolved,
    view: RoutingView,
    health: Mapping[str, Health],
    config: PlanConfig,
    *,
    now: float,
    turn: int = 0,
    dice: float = 0.0,
    load: Mapping[str, int] | None = None,
) -> tuple[Candidate, ...]:
    """Every candidate for ``resolved``, best first, each instance at most once. ``turn``,
    ``dice`` and ``load`` go to ``balance.order``."""
    if resolved.instance_id is not None:
        info = view.instance(resolved.instance_id)
        if info is None:
            return ()
        action: Action = "forward" if info.state == "ready" else "start"
        return (Candidate(info.model_id, info.id, action, resolved.reason),)
    out = list(
        for_model(resolved.model_id, resolved.reason, view, health, config, now, turn, dice, load)
    )
    seen = {resolved.model_id}
    for name in (config.fallbacks or {}).get(resolved.model_id, ()):
        nxt = resolve(name, view, config.resolve)
        if not isinstance(nxt, Resolved) or nxt.model_id in seen:
            continue
        seen.add(nxt.model_id)
        reason = f"fallback:{nxt.model_id}"
        more = for_model(nxt.model_id, reason, view, health, config, now, turn, dice, load)
        out += [
            Candidate(c.model_id, c.instance_id, c.action, c.reason, c.probe, True) for c in more
        ]
    return tuple(out)


def for_model(
    model_id: str,
    reason: str,
    view: RoutingView,
    health: Mapping[str, Health],
    config: PlanConfig,
    now: float,
    turn: int,
    dice: float,
    load: Mapping[str, int] | None = None,
) -> list[Candidate]:
    """The candidates of one model, in the order described in the module docstring."""
    pool = [i for i in view.by_model.get(model_id, ()) if not i.persona]
    if not pool:
        return [Candidate(model_id, None, "create", reason)]
    verdicts = {i.id: verdict(health.get(i.id, HEALTHY), now, config.policy) for i in pool}
    ready = [i for i in pool if i.state == "ready"]
    probes = [i for i in ready if verdicts[i.id] == "probe"]
    healthy = order([i for i in ready if verdicts[i.id] == "healthy"], config.strategy, turn, dice)
    cooling = [i for i in ready if verdicts[i.id] == "cooldown"]
    starting = [i for i in pool if i.state == "starting"]
    idle = sorted((i for i in pool if i.state not in ("ready", "starting")), key=_start_order)
    out = [Candidate(model_id, i.id, "forward", reason, probe=True) for i in probes[:1]]
    out += [Candidate(model_id, i.id, "forward", reason) for i in healthy]
    out += [Candidate(model_id, i.id, "start", reason) for i in (*starting, *idle)]
    out += [Candidate(model_id, i.id, "forward", reason) for i in (*probes[1:], *cooling)]
    return out


def _start_order(info: InstanceInfo) -> tuple[bool, bool, bool, str]:
    # A sleeping instance first: waking it takes a second where a start takes a minute.
    return (info.state != "sleeping", not info.on_demand, info.state == "error", info.id)


def reason_after(candidate: Candidate, failed: str, why: str) -> str:
    """The route reason of a candidate tried because ``failed`` (an instance id) failed."""
    kind = "fallback" if candidate.fallback else "retry"
    return f"{kind} after {failed} failed: {why}; {candidate.reason}"


@dataclass(frozen=True)
class ProfileRouting:
    """The routing part of the active profile: it wins over the gateway settings."""

    auto: str | None = None
    tiers: Mapping[str, str] = field(default_factory=dict)
    roles: Mapping[str, str] = field(default_factory=dict)
    fallbacks: Mapping[str, Sequence[str]] = field(default_factory=dict)
    strategy: Strategy | None = None  # None: load balancing off in the profile, keep config's


def with_profile(base: PlanConfig, profile: ProfileRouting | None) -> PlanConfig:
    """``base`` (from settings) with the profile's defaults, fallbacks and strategy on top."""
    if profile is None:
        return base
    resolve = ResolveConfig(
        default_model=profile.auto or base.resolve.default_model,
        tier_defaults={**base.resolve.tier_defaults, **profile.tiers},
        aliases=base.resolve.aliases,
        role_defaults={**base.resolve.role_defaults, **profile.roles},
    )
    return PlanConfig(
        strategy=profile.strategy or base.strategy,
        fallbacks={**(base.fallbacks or {}), **profile.fallbacks},
        policy=base.policy,
        resolve=resolve,
    )
