"""The figures as Prometheus metrics, read from the in-memory aggregates at scrape time.

A custom collector rather than prometheus_client counters: recording a request then costs
nothing more, and the metrics cannot drift from ``Figures.snapshot()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric

if TYPE_CHECKING:
    from modelyard.gateway.figures import Figures


class FiguresCollector:
    """Collects one ``Figures`` service. Must run on the thread that records (the loop's).

    Counters include the history loaded from the store, so they carry on across a restart;
    histograms cover successful requests (latency) and first tokens (TTFT) of this process.
    """

    def __init__(self, figures: Figures) -> None:
        self._figures = figures

    def collect(self) -> Iterator[Metric]:
        f = self._figures
        requests = CounterMetricFamily(
            "modelyard_requests",
            "Gateway requests by model, instance, endpoint and outcome.",
            labels=["model", "instance", "endpoint", "outcome"],
        )
        for labels, count in sorted(f.counts.items()):
            requests.add_metric(list(labels), count)
        yield requests

        latency = HistogramMetricFamily(
            "modelyard_request_latency_seconds",
            "Latency of successful requests, start to last byte.",
            labels=["model"],
        )
        ttft = HistogramMetricFamily(
            "modelyard_ttft_seconds", "Time to the first token.", labels=["model"]
        )
        tokens = CounterMetricFamily(
            "modelyard_tokens", "Tokens by model and direction.", labels=["model", "direction"]
        )
        for model_id, agg in sorted(f.models.items()):
            latency.add_metric([model_id], agg.latency_hist.cumulative(), agg.latency_hist.sum)
            ttft.add_metric([model_id], agg.ttft_hist.cumulative(), agg.ttft_hist.sum)
            tokens.add_metric([model_id, "in"], agg.tokens_in)
            tokens.add_metric([model_id, "out"], agg.tokens_out)
        yield latency
        yield ttft
        yield tokens

        in_flight = GaugeMetricFamily(
            "modelyard_in_flight", "Requests in flight per instance.", labels=["instance"]
        )
        for instance_id, count in sorted(f.in_flight().items()):
            in_flight.add_metric([instance_id], count)
        yield in_flight

        yield GaugeMetricFamily(
            "modelyard_figures_pending", "Records waiting to be written.", value=f.pending
        )
        yield CounterMetricFamily(
            "modelyard_figures_dropped",
            "Records dropped because the write buffer was full.",
            value=f.dropped,
        )
