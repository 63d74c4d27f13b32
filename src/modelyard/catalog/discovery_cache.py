"""The discovery cache: parsed headers kept by file identity, so unchanged files are not read.

A row is valid while the file's ``(dev, ino, size, mtime_ns)`` is unchanged. Read errors are not
kept: a file that failed (a permission since fixed, a download since finished) is read again.
Rows are loaded once per scan; changes are collected and written in the caller's transaction.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import fields
from typing import Any

from modelyard.catalog.gguf import GGUFHeader
from modelyard.catalog.grouping import PhysicalFile
from modelyard.store import Store
from modelyard.store.discovery import CachedHeader, cached_headers, write_cached_headers

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


class DiscoveryCache:
    """One scan's view of the ``discovery_cache`` table. Not shared between scans or threads."""

    def __init__(self, rows: dict[str, CachedHeader]) -> None:
        self._rows = rows
        self._seen: set[str] = set()
        self._upserts: dict[str, CachedHeader] = {}

    @classmethod
    def load(cls, store: Store) -> DiscoveryCache:
        return cls(cached_headers(store))

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
        self._upserts[file.key] = CachedHeader(
            found.path, found.size, found.mtime_ns, header_to_json(header)
        )

    @property
    def stale(self) -> list[str]:
        """Keys of rows no file of this scan used: gone, changed, or now failing."""
        return sorted(set(self._rows) - self._seen)

    def write(self, conn: sqlite3.Connection) -> None:
        """Apply this scan's changes inside the caller's transaction."""
        write_cached_headers(conn, self.stale, self._upserts)
