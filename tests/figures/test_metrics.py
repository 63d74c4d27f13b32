"""``GET /metrics`` serves the figures as Prometheus text from a per-service registry."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from modelyard.api.metrics import metrics_router
from modelyard.figures.service import Figures
from modelyard.services import Services
from modelyard.settings import Settings

from .helpers import rec


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def _scrape(figures: Figures, settings: Settings) -> httpx.Response:
    app = FastAPI()
    app.include_router(metrics_router(figures, settings))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/metrics")


async def test_metrics_text_holds_the_counters(services: Services) -> None:
    figures = services.figures
    figures.record(rec(ttft_s=0.02, latency_s=0.3))
    figures.record(rec(ttft_s=0.02, latency_s=0.3))
    figures.record(rec(outcome="error", status=502, ttft_s=None))
    figures.record(rec(model_id=None, instance_id=None, outcome="error", status=404))

    response = await _scrape(figures, services.settings)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    labels = (("endpoint", "chat"), ("instance", "m1:01"), ("model", "m1"))
    assert samples[("modelyard_requests_total", (*labels, ("outcome", "ok")))] == 2
    assert samples[("modelyard_requests_total", (*labels, ("outcome", "error")))] == 1
    unresolved = (("endpoint", "chat"), ("instance", ""), ("model", ""), ("outcome", "error"))
    assert samples[("modelyard_requests_total", unresolved)] == 1
    assert samples[("modelyard_tokens_total", (("direction", "out"), ("model", "m1")))] == 60
    assert samples[("modelyard_request_latency_seconds_count", (("model", "m1"),))] == 2
    assert (
        samples[("modelyard_request_latency_seconds_bucket", (("le", "0.25"), ("model", "m1")))]
        == 0
    )
    assert (
        samples[("modelyard_request_latency_seconds_bucket", (("le", "0.5"), ("model", "m1")))] == 2
    )
    assert samples[("modelyard_ttft_seconds_bucket", (("le", "0.025"), ("model", "m1")))] == 2
    assert samples[("modelyard_figures_pending", ())] == 4
    assert not any(name == "modelyard_in_flight" for name, _ in samples)  # no provider given


async def test_in_flight_gauge_reads_the_provider_at_each_scrape(services: Services) -> None:
    """Prevents a gauge nothing feeds: ``modelyard_in_flight`` was declared but never set."""
    counts = {"m1:01": 2, "m2:01": 0}
    figures = Figures(services.settings, services.store, in_flight=lambda: counts)

    first = _samples((await _scrape(figures, services.settings)).text)
    counts["m1:01"] = 5
    second = _samples((await _scrape(figures, services.settings)).text)

    assert first[("modelyard_in_flight", (("instance", "m1:01"),))] == 2
    assert first[("modelyard_in_flight", (("instance", "m2:01"),))] == 0
    assert second[("modelyard_in_flight", (("instance", "m1:01"),))] == 5


def test_each_service_has_its_own_registry(services: Services) -> None:
    """Two services in one process must not share (or collide in) the global registry."""
    other = Figures(services.settings, services.store)
    services.figures.record(rec())
    assert b'model="m1"' in services.figures.render_metrics()[0]
    assert b'model="m1"' not in other.render_metrics()[0]
