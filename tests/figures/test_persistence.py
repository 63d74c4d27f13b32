"""Records reach the store and the JSONL request log off the hot path, and survive a restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.errors import ValidationFailed
from modelyard.figures.request_log import RequestLog
from modelyard.figures.service import Figures
from modelyard.settings import Settings, load_settings
from modelyard.store import Store

from .helpers import NOW, rec, wait_until


@pytest.fixture
def fast_settings() -> Settings:
    return load_settings(discovery={"default_model": False}, figures={"flush_interval_s": 0.02})


@pytest.fixture
def store(fast_settings: Settings) -> Iterator[Store]:
    opened = Store.open(fast_settings.db_path)
    yield opened
    opened.close()


def _stored(store: Store) -> int:
    return int(store.query("SELECT COUNT(*) AS n FROM requests")[0]["n"])


def _log_lines(settings: Settings) -> list[dict[str, object]]:
    path = settings.logs_dir / "requests.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_the_flush_task_writes_store_and_request_log(
    fast_settings: Settings, store: Store
) -> None:
    figures = Figures(fast_settings, store)
    await figures.start()
    try:
        for i in range(25):
            figures.record(rec(request_id=f"r{i}", started_at=NOW + i))
        assert figures.pending == 25  # record() itself never writes
        await wait_until(lambda: _stored(store) == 25 and len(_log_lines(fast_settings)) == 25)
        assert figures.pending == 0
    finally:
        await figures.aclose()
    row = store.query("SELECT * FROM requests WHERE request_id = 'r3'")[0]
    assert (row["model_id"], row["instance_id"], row["outcome"], row["stream"]) == (
        "m1",
        "m1:01",
        "ok",
        1,
    )
    assert row["tokens_per_s"] == pytest.approx(20.0)
    line = _log_lines(fast_settings)[3]
    assert line["request_id"] == "r3"
    assert line["tokens_per_s"] == pytest.approx(20.0)


async def test_aclose_writes_what_is_left(store: Store) -> None:
    slow = load_settings(discovery={"default_model": False}, figures={"flush_interval_s": 3600})
    figures = Figures(slow, store)
    await figures.start()
    figures.record(rec())
    await figures.aclose()
    assert _stored(store) == 1


async def test_totals_survive_a_restart(fast_settings: Settings) -> None:
    first = Store.open(fast_settings.db_path)
    figures = Figures(fast_settings, first)
    await figures.start()
    figures.record(rec(ttft_s=0.2, latency_s=1.2, tokens_in=3, tokens_out=5))
    figures.record(rec(instance_id="m1:02", outcome="error", status=502, ttft_s=None))
    figures.record(rec(model_id="m2", instance_id="m2:01", started_at=NOW + 9))
    await figures.aclose()
    before = figures.snapshot()
    first.close()

    second = Store.open(fast_settings.db_path)
    try:
        restarted = Figures(fast_settings, second)
        restarted.record(rec(started_at=NOW + 20))  # recorded before start(): kept
        await restarted.start()
        after = restarted.snapshot()
        await restarted.aclose()
    finally:
        second.close()
    m1_before, m1_after = before["models"]["m1"], after["models"]["m1"]
    assert m1_after["requests"] == m1_before["requests"] + 1 == 3
    assert m1_after["successes"] == 2
    assert m1_after["tokens_in"] == m1_before["tokens_in"] + 10
    assert m1_after["last_request_at"] == NOW + 20
    assert m1_after["ttft_p50_s"] == pytest.approx(0.15)
    assert m1_after["instances"]["m1:02"]["errors"] == 1
    assert after["models"]["m2"] == before["models"]["m2"]
    assert after["total"]["requests"] == 4


async def test_history_buckets(store: Store, fast_settings: Settings) -> None:
    figures = Figures(fast_settings, store)
    figures.record(rec(started_at=NOW, ttft_s=0.1))
    figures.record(rec(started_at=NOW + 30, ttft_s=0.3, outcome="error", status=500))
    figures.record(rec(started_at=NOW + 70, ttft_s=0.5))
    figures.record(rec(model_id="m2", instance_id="m2:01", started_at=NOW + 10))
    assert await figures.flush() == 4
    series = figures.history(model_id="m1", since=NOW - 60, bucket_s=60)
    assert [b["start"] for b in series] == [NOW - 20, NOW + 40]  # NOW is 20 s into a minute
    assert series[0]["requests"] == 2
    assert series[0]["success_rate"] == 0.5
    assert series[0]["ttft_p50_s"] == pytest.approx(0.2)
    assert series[1]["tokens_per_s"] == pytest.approx(20 / 0.6)
    assert sum(b["requests"] for b in figures.history(since=NOW - 60)) == 4
    with pytest.raises(ValidationFailed):
        figures.history(bucket_s=0)


async def test_a_failing_store_keeps_the_batch(fast_settings: Settings) -> None:
    store = Store.open(fast_settings.db_path)
    figures = Figures(fast_settings, store)
    figures.record(rec())
    store.close()
    assert await figures.flush() == 0
    assert figures.pending == 1


def test_request_log_rotates(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    log = RequestLog(folder / "requests.jsonl", max_bytes=1024, backups=2)
    for i in range(40):
        log.write([{"i": i, "pad": "x" * 100}])
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["requests.jsonl", "requests.jsonl.1", "requests.jsonl.2"]
    assert all(p.stat().st_size <= 1024 for p in folder.iterdir())
    last = (folder / "requests.jsonl").read_text().splitlines()[-1]
    assert json.loads(last)["i"] == 39
