"""The ``discovery_cache`` table: parsed headers (as JSON text) by file identity."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from modelyard.store.db import Store


@dataclass(frozen=True)
class CachedHeader:
    """One row: the header of the file at ``path``, read when it had this size and mtime."""

    path: str
    size: int
    mtime_ns: int
    header: str


def cached_headers(store: Store) -> dict[str, CachedHeader]:
    """Every row by file key."""
    rows = store.query("SELECT file_key, path, size, mtime_ns, header FROM discovery_cache")
    return {r[0]: CachedHeader(r[1], r[2], r[3], r[4]) for r in rows}


def write_cached_headers(
    conn: sqlite3.Connection, stale: Iterable[str], upserts: Mapping[str, CachedHeader]
) -> None:
    """Delete the rows ``stale`` names, then insert or replace ``upserts`` (by file key)."""
    conn.executemany("DELETE FROM discovery_cache WHERE file_key = ?", ((k,) for k in stale))
    conn.executemany(
        "INSERT OR REPLACE INTO discovery_cache (file_key, path, size, mtime_ns, header) "
        "VALUES (?, ?, ?, ?, ?)",
        ((k, r.path, r.size, r.mtime_ns, r.header) for k, r in upserts.items()),
    )
