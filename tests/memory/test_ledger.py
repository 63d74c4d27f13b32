"""Reported buffer sizes kept in a real SQLite store and used to correct estimates."""

from __future__ import annotations

from pathlib import Path

from modelyard.catalog.model import Model
from modelyard.engines.base import EngineArgs, LaunchSpec, MeasurementKey
from modelyard.engines.llamacpp import LlamaCppEngine
from modelyard.fleet.memory import MemoryLedger
from modelyard.settings import LlamaCppSettings
from modelyard.store.db import Store

MIB = 1024 * 1024
KEY = MeasurementKey(ctx=2048, gpu_layers=0, parallel=1, cache_type="f16", ubatch=512)
BUFFERS = {
    "CPU_Mapped model": 235 * MIB,
    "CPU_REPACK model": 12 * MIB,
    "CPU KV": 21 * MIB,
    "CPU compute": 21 * MIB,
    "CPU output": MIB,
}


def test_recorded_buffers_survive_a_reopen(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "m.db")
    MemoryLedger(store).record("gemma", KEY, BUFFERS)
    store.close()
    reopened = Store.open(tmp_path / "m.db")
    ledger = MemoryLedger(reopened)
    ledger.load()
    assert ledger.lookup("gemma", KEY) == BUFFERS
    assert ledger.lookup("gemma", MeasurementKey(2048, 0, 2, "f16", 512)) is None
    assert ledger.lookup("other", KEY) is None
    reopened.close()


def test_a_new_measurement_replaces_the_row(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "m.db")
    ledger = MemoryLedger(store)
    ledger.record("gemma", KEY, BUFFERS)
    other = MeasurementKey(ctx=2048, gpu_layers=0, parallel=2, cache_type="f16", ubatch=512)
    ledger.record("gemma", other, {"CPU KV": MIB})
    assert ledger.lookup("gemma", KEY) is None
    assert ledger.lookup("gemma", other) == {"CPU KV": MIB}
    assert len(store.query("SELECT * FROM memory_measurements")) == 1
    store.close()


def test_unreadable_rows_are_skipped(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "m.db")
    with store.transaction() as conn:
        conn.execute("INSERT INTO memory_measurements VALUES ('x', 1, 0, 'not json', '2024-01-01')")
    ledger = MemoryLedger(store)
    ledger.load()
    assert ledger.lookup("x", KEY) is None
    store.close()


def test_the_engine_estimate_uses_the_ledger(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "m.db")
    ledger = MemoryLedger(store)
    engine = LlamaCppEngine(LlamaCppSettings(), measurements=ledger.lookup)
    model = Model(
        id="gemma",
        name="gemma",
        source="folder",
        path=str(tmp_path / "g.gguf"),
        block_count=18,
        embedding_length=640,
        head_count=4,
        tensor_bytes=235 * MIB,
    )
    spec = LaunchSpec("gemma:01", model, 8200, "gemma", EngineArgs(ctx=2048))
    assert not engine.estimate(spec).measured
    ledger.record("gemma", engine.measurement_key(spec), BUFFERS)
    corrected = engine.estimate(spec)
    assert corrected.measured
    assert corrected.weights == 247 * MIB
    assert corrected.kv_cache == 21 * MIB
    assert corrected.compute == 22 * MIB
    assert corrected.device is None
    store.close()
