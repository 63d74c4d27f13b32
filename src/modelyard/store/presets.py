"""The ``presets`` table: the user's system-prompt presets by name, their fields as JSON.

Writers take the connection of the caller's transaction, so a change and its audit entry land
together.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from modelyard.store.db import Store, now_iso


def preset_rows(store: Store) -> dict[str, Any]:
    """Every user preset: name -> its stored fields (decoded JSON), in name order."""
    rows = store.query("SELECT name, data FROM presets ORDER BY name")
    return {r[0]: json.loads(r[1]) for r in rows}


def preset_row(conn: sqlite3.Connection, name: str) -> Any:
    """One preset's stored fields (decoded JSON), or None when there is none by that name."""
    row = conn.execute("SELECT data FROM presets WHERE name = ?", (name,)).fetchone()
    return None if row is None else json.loads(row[0])


def insert_preset(conn: sqlite3.Connection, name: str, data: dict[str, Any]) -> None:
    """Add a preset; raises sqlite3.IntegrityError when the name is taken."""
    stamp = now_iso()
    conn.execute(
        "INSERT INTO presets (name, data, created_at, updated_at) VALUES (?, ?, ?, ?)",
        (name, json.dumps(data, sort_keys=True), stamp, stamp),
    )


def delete_preset(conn: sqlite3.Connection, name: str) -> None:
    conn.execute("DELETE FROM presets WHERE name = ?", (name,))
