"""In-memory figures for one key (all requests, a model, an instance).

Counters, bounded reservoirs of the latest samples for percentiles, and fixed-bucket
histograms for Prometheus. Adding a record is O(1) (a bisect over a dozen bounds).
An aggregate has one owner and is used from one thread; it does no locking.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.figures.record import Outcome, RequestRecord

LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
TTFT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip

CounterKey = tuple[str, str, str, str]  # model, instance, endpoint, outcome ("" when unknown)


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) of sorted values, linearly interpolated; ``None`` if empty."""
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class Histogram:
    """Counts per bucket (``value <= bound``), their sum and count, as Prometheus wants them."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, count of values <= le)`` pairs ending with ``+Inf``."""
        total = 0
        out: list[tuple[str, float]] = []
        for bound, count in zip((*map(repr, self.bounds), "+Inf"), self.counts, strict=True):
            total += count
            out.append((bound, float(total)))
        return out


@dataclass(frozen=True)
class Sample:
    """The timing figures of one stored request, to seed reservoirs after a restart."""

    ttft_s: float | None
    latency_s: float
    tokens_per_s: float | None
    ok: bool


@dataclass(frozen=True)
class Totals:
    """Counts over stored requests for one key, to seed an aggregate after a restart."""

    requests: int
    successes: int
    cancelled: int
    tokens_in: int
    tokens_out: int
    last_at: float | None


class Aggregate:
    """Figures for one key.

    ``requests`` counts every outcome; the success rate is over finished requests (``ok`` or
    ``error``): a client that cancels is not a failure of the backend. Latency and tokens/s
    samples come from successful requests only, so fast rejections do not pull the
    percentiles down; TTFT samples come from any request that had a first token.
    The histograms cover this process's records only, not seeded history.
    """

    __slots__ = (
        "cancelled",
        "last_at",
        "latency",
        "latency_hist",
        "requests",
        "successes",
        "tokens_in",
        "tokens_out",
        "tps",
        "ttft",
        "ttft_hist",
    )

    def __init__(self, reservoir: int) -> None:
        self.requests = 0
        self.successes = 0
        self.cancelled = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.last_at: float | None = None
        self.ttft: deque[float] = deque(maxlen=reservoir)
        self.latency: deque[float] = deque(maxlen=reservoir)
        self.tps: deque[float] = deque(maxlen=reservoir)
        self.latency_hist = Histogram(LATENCY_BUCKETS)
        self.ttft_hist = Histogram(TTFT_BUCKETS)

    def add(self, rec: RequestRecord) -> None:
        """Count one record: O(1)."""
        self.requests += 1
        self.tokens_in += rec.tokens_in or 0
        self.tokens_out += rec.tokens_out or 0
        if self.last_at is None or rec.started_at > self.last_at:
            self.last_at = rec.started_at
        if rec.ttft_s is not None:
            self.ttft.append(rec.ttft_s)
            self.ttft_hist.observe(rec.ttft_s)
        if rec.outcome == Outcome.CANCELLED:
            self.cancelled += 1
        elif rec.outcome == Outcome.OK:
            self.successes += 1
            self.latency.append(rec.latency_s)
            self.latency_hist.observe(rec.latency_s)
            tps = rec.tokens_per_s
            if tps is not None:
                self.tps.append(tps)

    def seed_totals(self, totals: Totals) -> None:
        """Add stored counts (history from before this process)."""
        self.requests += totals.requests
        self.successes += totals.successes
        self.cancelled += totals.cancelled
        self.tokens_in += totals.tokens_in
        self.tokens_out += totals.tokens_out
        if totals.last_at is not None and (self.last_at is None or totals.last_at > self.last_at):
            self.last_at = totals.last_at

    def seed_samples(self, samples: Iterable[Sample]) -> None:
        """Add stored samples, oldest first, to the reservoirs (not to the histograms)."""
        for sample in samples:
            if sample.ttft_s is not None:
                self.ttft.append(sample.ttft_s)
            if sample.ok:
                self.latency.append(sample.latency_s)
                if sample.tokens_per_s is not None:
                    self.tps.append(sample.tokens_per_s)

    def stats(self) -> dict[str, Any]:
        """The figures as JSON-ready values; percentiles over the reservoirs."""
        finished = self.requests - self.cancelled
        ttft = sorted(self.ttft)
        latency = sorted(self.latency)
        return {
            "requests": self.requests,
            "successes": self.successes,
            "errors": finished - self.successes,
            "cancelled": self.cancelled,
            "success_rate": self.successes / finished if finished else None,
            "ttft_p50_s": percentile(ttft, 0.5),
            "ttft_p95_s": percentile(ttft, 0.95),
            "latency_p50_s": percentile(latency, 0.5),
            "latency_p95_s": percentile(latency, 0.95),
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "tokens_per_s": sum(self.tps) / len(self.tps) if self.tps else None,
            "last_request_at": self.last_at,
        }
