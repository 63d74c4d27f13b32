"""In-memory aggregation per model and instance, and percentiles over bounded reservoirs."""

from __future__ import annotations

import pytest

from modelyard.figures.aggregate import percentile
from modelyard.figures.service import Figures
from modelyard.services import Services
from modelyard.settings import load_settings
from modelyard.store import Store

from .helpers import NOW, rec


def test_percentile_interpolates() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == pytest.approx(50.5)
    assert percentile(values, 0.95) == pytest.approx(95.05)
    assert percentile([3.0], 0.95) == 3.0
    assert percentile([], 0.5) is None


def test_snapshot_per_model_and_instance(services: Services) -> None:
    figures = services.figures
    for i in range(1, 101):
        figures.record(rec(instance_id="m1:01", ttft_s=i / 1000, latency_s=1 + i / 1000))
    figures.record(rec(instance_id="m1:02", outcome="error", status=502, ttft_s=None))
    figures.record(rec(instance_id="m1:02", outcome="cancelled", status=499, ttft_s=None))
    figures.record(rec(model_id="m2", instance_id="m2:01", started_at=NOW + 5, tokens_out=None))
    figures.record(rec(model_id=None, instance_id=None, outcome="error", status=404))

    snap = figures.snapshot()
    assert snap["total"]["requests"] == 104
    assert snap["pending"] == 104
    m1 = snap["models"]["m1"]
    assert m1["requests"] == 102
    assert m1["successes"] == 100
    assert m1["errors"] == 1
    assert m1["cancelled"] == 1
    assert m1["success_rate"] == pytest.approx(100 / 101)
    assert m1["ttft_p50_s"] == pytest.approx(0.0505)
    assert m1["ttft_p95_s"] == pytest.approx(0.09505)
    assert m1["latency_p50_s"] == pytest.approx(1.0505)
    assert m1["tokens_in"] == 1020
    assert m1["tokens_out"] == 2040
    assert m1["tokens_per_s"] == pytest.approx(20.0)
    assert set(m1["instances"]) == {"m1:01", "m1:02"}
    assert m1["instances"]["m1:02"]["success_rate"] == 0.0
    assert m1["instances"]["m1:02"]["latency_p50_s"] is None
    m2 = snap["models"]["m2"]
    assert m2["tokens_per_s"] is None
    assert m2["last_request_at"] == NOW + 5


def test_reservoir_keeps_the_latest_samples(tmp_path: object) -> None:
    settings = load_settings(discovery={"default_model": False}, figures={"reservoir": 10})
    store = Store.open(settings.db_path)
    try:
        figures = Figures(settings, store)
        for i in range(100):
            figures.record(rec(ttft_s=float(i), latency_s=float(i) + 1))
        model = figures.snapshot()["models"]["m1"]
        assert model["requests"] == 100
        assert model["ttft_p50_s"] == pytest.approx(94.5)  # median of 90..99
    finally:
        store.close()


def test_full_buffer_drops_writes_but_still_counts(tmp_path: object) -> None:
    settings = load_settings(discovery={"default_model": False}, figures={"buffer_max": 3})
    store = Store.open(settings.db_path)
    try:
        figures = Figures(settings, store)
        for _ in range(5):
            figures.record(rec())
        assert (figures.pending, figures.dropped) == (3, 2)
        assert figures.snapshot()["total"]["requests"] == 5
    finally:
        store.close()
