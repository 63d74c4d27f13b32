"""The ``control_state`` table: small named values (JSON) that the server and the CLI share,
such as the active profile's name."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from modelyard.store.db import Store, now_iso


@dataclass(frozen=True)
class ControlValue:
    """One stored value (decoded JSON) and when it was set."""

    value: Any
    updated_at: str


def control_value(store: Store, key: str) -> ControlValue | None:
    """The value stored under ``key``, or None when it was never set."""
    rows = store.query("SELECT value, updated_at FROM control_state WHERE key = ?", (key,))
    return ControlValue(json.loads(rows[0][0]), rows[0][1]) if rows else None


def set_control_value(conn: sqlite3.Connection, key: str, value: Any) -> None:
    """Store ``value`` (JSON-ready) under ``key`` inside the caller's transaction."""
    conn.execute(
        "INSERT OR REPLACE INTO control_state (key, value, updated_at) VALUES (?, ?, ?)",
        (key, json.dumps(value), now_iso()),
    )
