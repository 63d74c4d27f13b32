"""The catalog's tables: ``catalog``, ``catalog_scans``, ``catalog_folders``, ``overrides``
and ``curated``.

Readers take the Store (or, inside a transaction, its connection) and return plain values;
writers take the connection of the caller's transaction, so a change and its audit entry
land together. JSON columns come back decoded, except the records of ``catalog`` and
``curated``: their readers parse them into their own types.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from modelyard.store.db import Store, now_iso

JsonTable = Literal["overrides", "curated"]
_KEYS: dict[JsonTable, str] = {"overrides": "model_id", "curated": "id"}


@dataclass(frozen=True)
class CatalogRow:
    """One row of ``catalog``: a record as JSON, under its file key and path. Curated records
    have no file key (they are stored only to report changes between scans)."""

    file_key: str | None
    path: str | None
    data: str


@dataclass(frozen=True)
class ScanSummary:
    """One row of ``catalog_scans``, less its time and report."""

    fingerprint: str
    models: int
    errors: int


def _fetch(db: Store | sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    if isinstance(db, Store):
        return db.query(sql, params)
    return db.execute(sql, params).fetchall()


# -- catalog, catalog_scans --------------------------------------------------------------------


def catalog_rows(store: Store) -> dict[str, CatalogRow]:
    """Every stored record by id."""
    rows = store.query("SELECT id, file_key, path, data FROM catalog")
    return {r[0]: CatalogRow(r[1], r[2], r[3]) for r in rows}


def discovered_records(store: Store) -> list[str]:
    """The JSON of every discovered record (those with a file key), in no particular order."""
    return [r[0] for r in store.query("SELECT data FROM catalog WHERE file_key IS NOT NULL")]


def write_records(
    conn: sqlite3.Connection,
    deletes: Iterable[str],
    upserts: Mapping[str, CatalogRow],
    seen_at: str,
) -> None:
    """Delete the records ``deletes`` names, then insert or replace ``upserts`` (by id)."""
    conn.executemany("DELETE FROM catalog WHERE id = ?", ((i,) for i in deletes))
    conn.executemany(
        "INSERT OR REPLACE INTO catalog (id, file_key, path, data, seen_at) VALUES (?, ?, ?, ?, ?)",
        ((i, r.file_key, r.path, r.data, seen_at) for i, r in upserts.items()),
    )


def last_scan(store: Store) -> ScanSummary | None:
    """The latest scan that changed anything, or None when the catalog was never scanned."""
    rows = store.query(
        "SELECT fingerprint, models, errors FROM catalog_scans ORDER BY id DESC LIMIT 1"
    )
    return ScanSummary(rows[0][0], rows[0][1], rows[0][2]) if rows else None


def record_scan(
    conn: sqlite3.Connection, summary: ScanSummary, report: Mapping[str, Any], at: str, keep: int
) -> None:
    """Add one ``catalog_scans`` row and drop all but the latest ``keep``."""
    cursor = conn.execute(
        "INSERT INTO catalog_scans (at, fingerprint, models, errors, report) "
        "VALUES (?, ?, ?, ?, ?)",
        (at, summary.fingerprint, summary.models, summary.errors, json.dumps(report)),
    )
    conn.execute("DELETE FROM catalog_scans WHERE id <= ?", ((cursor.lastrowid or 0) - keep,))


# -- catalog_folders -----------------------------------------------------------------------------


def folders(store: Store) -> list[str]:
    """Folders remembered for every scan, as stored (absolute paths)."""
    return [r[0] for r in store.query("SELECT path FROM catalog_folders")]


def add_folders(conn: sqlite3.Connection, paths: Iterable[str]) -> None:
    """Remember ``paths``; one already remembered is left as it is."""
    conn.executemany(
        "INSERT OR IGNORE INTO catalog_folders (path, added_at) VALUES (?, ?)",
        ((p, now_iso()) for p in paths),
    )


def remove_folder(conn: sqlite3.Connection, path: str) -> None:
    conn.execute("DELETE FROM catalog_folders WHERE path = ?", (path,))


# -- overrides, curated --------------------------------------------------------------------------


def overrides(store: Store) -> dict[str, Any]:
    """What the user set, by model id (each value the stored JSON, decoded)."""
    return json_rows(store, "overrides")


def overrides_of(db: Store | sqlite3.Connection, model_id: str) -> Any:
    """The stored overrides of one id (decoded JSON), or None when none are stored."""
    rows = _fetch(db, "SELECT data FROM overrides WHERE model_id = ?", (model_id,))
    return json.loads(rows[0][0]) if rows else None


def curated_records(store: Store) -> dict[str, str]:
    """Imported curated entries as JSON text, by id in id order."""
    return {r[0]: r[1] for r in store.query("SELECT id, data FROM curated ORDER BY id")}


def json_rows(db: Store | sqlite3.Connection, table: JsonTable) -> dict[str, Any]:
    """Every row of ``overrides`` or ``curated``: key -> decoded JSON."""
    rows = _fetch(db, f"SELECT {_KEYS[table]}, data FROM {table}")
    return {r[0]: json.loads(r[1]) for r in rows}


def put_json_row(conn: sqlite3.Connection, table: JsonTable, key: str, data: Any) -> None:
    """Store ``data`` (JSON-ready) under ``key``; None deletes the row."""
    column = _KEYS[table]
    if data is None:
        conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (key,))
        return
    conn.execute(
        f"INSERT OR REPLACE INTO {table} ({column}, data, updated_at) VALUES (?, ?, ?)",
        (key, json.dumps(data, sort_keys=True), now_iso()),
    )
