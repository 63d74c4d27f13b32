"""The discovery cache: parsed headers kept by file identity, so unchanged files are not read.

A row is valid while the file's ``(dev, ino, size, mtime_ns)`` is unchanged. Read errors are not
kept: a file that failed (a permission since fixed, a download since finished) is read again.
Rows are loaded once per scan; changes are collected and written in the caller's transaction.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, fields
from typing import Any

from modelyard.catalog.gguf import GGUFHeader
from modelyard.catalog.grouping import PhysicalFile
from modelyard.store import Store

# Bump when the stored shape of a header changes: older rows are then read again.
FORMAT = 2
_LEFT_OUT = ("kv", "arrays", "tensor_names")  # large, and nothing downstream needs them
_HEADER_FIELDS = frozenset(f.name for f in fields(GGUFHeader)) - set(_LEFT_OUT)


def header_to_json(header: GGUFHeader) -> str:
    data: dict[str, Any] = {name: getattr(header, name) for name in sorted(_HEADER_FIELDS)}
    data["format"] = FORMAT
    return json.dumps(data, sort_keys=True)


def header_from_json(text: str) -> GGUFHeader | None:
    """The stored header, or None when the row is from another format or cannot be parsed."""
    try:
        data: dict[str, Any] = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.pop("format", None) != FORMAT:
        return None
    if set(data) != _HEADER_FIELDS:
        return None
    return GGUFHeader(**data, kv={}, arrays={})


@dataclass(frozen=True)
class _Row:
    path: str
    size: int
    mtime_ns: int
    header: str


class DiscoveryCache:
    """One scan's view of the ``discovery_cache`` table. Not shared between scans or threads."""

    def __init__(self, rows: dict[str, _Row]) -> None:
        self._rows = rows
        self._seen: set[str] = set()
        self._upserts: dict[str, _Row] = {}

    @classmethod
    def load(cls, store: Store) -> DiscoveryCache:
        rows = store.query("SELECT file_key, path, size, mtime_ns, header FROM discovery_cache")
        return cls({r[0]: _Row(r[1], r[2], r[3], r[4]) for r in rows})

    def get(self, file: PhysicalFile) -> GGUFHeader | None:
        """The cached header if the file is unchanged since it was read, else None."""
        found = file.primary
        row = self._rows.get(file.key)
        if row is None or row.size != found.size or row.mtime_ns != found.mtime_ns:
            return None
        header = header_from_json(row.header)
        if header is not None:
            self._seen.add(file.key)
        return header

    def put(self, file: PhysicalFile, header: GGUFHeader) -> None:
        found = file.primary
        self._seen.add(file.key)
        self._upserts[file.key] = _Row(
            found.path, found.size, found.mtime_ns, header_to_json(header)
        )

    @property
    def stale(self) -> list[str]:
        """Keys of rows no file of this scan used: gone, changed, or now failing."""
        return sorted(set(self._rows) - self._seen)

    def write(self, conn: sqlite3.Connection) -> None:
        """Apply this scan's changes inside the caller's transaction."""
        conn.executemany(
            "DELETE FROM discovery_cache WHERE file_key = ?", ((k,) for k in self.stale)
        )
        conn.executemany(
            "INSERT OR REPLACE INTO discovery_cache (file_key, path, size, mtime_ns, header) "
            "VALUES (?, ?, ?, ?, ?)",
            ((k, r.path, r.size, r.mtime_ns, r.header) for k, r in self._upserts.items()),
        )
