"""Per-instance health: failures put an instance in cooldown; one probe lets it back.

A circuit breaker as pure transitions over a frozen ``Health``:

- closed: requests flow. A failure counts; ``failures_to_cooldown`` in a row, or
  ``recent_failures`` within ``recent_window_s``, trips it.
- cooldown: no requests until ``cooldown_until``. The n-th trip in a row lasts
  ``base * 2**(n-1)`` seconds, at most ``max``.
- probing: after the cooldown exactly one request goes through (``begin_probe``). Its success
  closes the breaker and forgets the trips (the record becomes ``HEALTHY``: the caller drops
  it); its failure trips it again, for twice as long. A probe whose outcome never arrives
  frees the slot after ``cooldown_max_s``.

Times are seconds on one monotonic clock, passed in by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Verdict = Literal["healthy", "probe", "cooldown"]


@dataclass(frozen=True)
class HealthPolicy:
    failures_to_cooldown: int = 3
    recent_window_s: float = 60.0
    recent_failures: int = 5
    cooldown_base_s: float = 1.0
    cooldown_max_s: float = 60.0


@dataclass(frozen=True)
class Health:
    """One instance's record. ``trips`` counts cooldowns since the last success."""

    consecutive: int = 0
    recent: tuple[float, ...] = ()
    trips: int = 0
    cooldown_until: float = 0.0
    probe_since: float | None = None
    last_error: str | None = None


HEALTHY = Health()


def verdict(health: Health, now: float, policy: HealthPolicy) -> Verdict:
    """``healthy``: send freely. ``probe``: one request may test it. ``cooldown``: keep off."""
    if health.trips == 0:
        return "healthy"
    if now < health.cooldown_until:
        return "cooldown"
    if health.probe_since is not None and now - health.probe_since < policy.cooldown_max_s:
        return "cooldown"  # a probe is already out
    return "probe"


def begin_probe(health: Health, now: float) -> Health:
    """Record that the probe request was sent."""
    return replace(health, probe_since=now)


def on_failure(health: Health, now: float, policy: HealthPolicy, error: str) -> Health:
    """A request failed (connection refused, timeout, 5xx, died mid-stream)."""
    recent = (*(t for t in health.recent if now - t < policy.recent_window_s), now)
    consecutive = health.consecutive + 1
    probing = health.trips > 0  # a failure after a cooldown (the probe's) trips again at once
    tripped = (
        probing
        or consecutive >= policy.failures_to_cooldown
        or len(recent) >= policy.recent_failures
    )
    if not tripped:
        return replace(health, consecutive=consecutive, recent=recent, last_error=error)
    trips = health.trips + 1
    return Health(
        consecutive=consecutive,
        recent=recent,
        trips=trips,
        cooldown_until=now + cooldown_s(trips, policy),
        probe_since=None,
        last_error=error,
    )


def cooldown_s(trips: int, policy: HealthPolicy) -> float:
    """The n-th trip's cooldown: exponential from the base, capped."""
    return min(policy.cooldown_max_s, policy.cooldown_base_s * 2.0 ** min(trips - 1, 60))


def score(health: Health, now: float, policy: HealthPolicy) -> float:
    """1.0 healthy; lower for recent failures; 0.0 in cooldown. For display and ordering."""
    if verdict(health, now, policy) == "cooldown":
        return 0.0
    recent = sum(1 for t in health.recent if now - t < policy.recent_window_s)
    return max(0.0, 1.0 - recent / (policy.recent_failures + 1))
