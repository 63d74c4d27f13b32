"""The ``memory_measurements`` table: buffer sizes servers reported, per model and key.

One row per (model, ctx, gpu_layers); ``measured`` holds the whole key and the buffers as
JSON. Each function is one synchronous statement or transaction.
"""

from __future__ import annotations

import json
from typing import Any

from modelyard.store.db import Store, now_iso


def load(store: Store) -> list[tuple[str, str]]:
    """Every row as ``(model_id, measured JSON)``."""
    rows = store.query("SELECT model_id, measured FROM memory_measurements")
    return [(row["model_id"], row["measured"]) for row in rows]


def put(store: Store, model_id: str, ctx: int, gpu_layers: int, data: dict[str, Any]) -> None:
    """Replace the row of (model, ctx, gpu_layers) with ``data``."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO memory_measurements "
            "(model_id, ctx, gpu_layers, measured, at) VALUES (?, ?, ?, ?, ?)",
            (model_id, ctx, gpu_layers, json.dumps(data, sort_keys=True), now_iso()),
        )
