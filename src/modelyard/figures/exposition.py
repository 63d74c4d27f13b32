"""The figures as Prometheus metrics: one scrape of the in-memory aggregates, as text.

A collector over a ``Scrape`` rather than prometheus_client counters: recording a request
then costs nothing more, and the metrics cannot drift from ``Figures.snapshot()``. This module
imports prometheus_client (about 10 ms, 11 MB); ``Figures.render_metrics`` imports it on the
first scrape, so a server nobody scrapes does not carry it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric

from modelyard.figures.aggregate import Aggregate, CounterKey


@dataclass(frozen=True)
class Scrape:
    """What one scrape shows. The aggregates are the live ones, not copies: build a scrape
    and render it at once, on the thread that records (the event loop's).

    ``counts`` include the history loaded from the store, so they carry on across a restart;
    the histograms in ``models`` cover this process's requests only.
    """

    counts: Mapping[CounterKey, int]
    models: Mapping[str, Aggregate]
    in_flight: Mapping[str, int]
    pending: int
    dropped: int


def render(scrape: Scrape) -> tuple[bytes, str]:
    """The Prometheus text exposition of ``scrape`` and its content type."""
    return generate_latest(_Collector(scrape)), CONTENT_TYPE_LATEST


class _Collector:
    """One scrape as metric families: counters, latency and TTFT histograms, gauges."""

    def __init__(self, scrape: Scrape) -> None:
        self._scrape = scrape

    def collect(self) -> Iterator[Metric]:
        f = self._scrape
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
        for instance_id, count in sorted(f.in_flight.items()):
            in_flight.add_metric([instance_id], count)
        yield in_flight

        yield GaugeMetricFamily(
            "modelyard_figures_pending", "Records waiting to be written.", value=f.pending
        )
        yield CounterMetricFamily(
            "modelyard_figures_dropped",
            "Records never written: the write buffer was full or the store refused them.",
            value=f.dropped,
        )
