"""One SQLite database in WAL mode, migrated on open.

The store is used from one thread at a time through a lock; async callers go through
``asyncio.to_thread`` so the event loop never waits on the disk.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelyard.errors import StoreError
from modelyard.store import migrations


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Store:
    """The embedded database. Open with ``Store.open(path)``; close with ``close()``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating it if need be) and migrate. Raises StoreError if it cannot be used."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA foreign_keys=ON")
            store = cls(conn)
            with store._lock:
                migrations.apply(conn)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StoreError(f"the store at {path} cannot be opened: {exc}") from None
        return store

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE): all of it lands, or none of it."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cursor = self._conn.execute(sql, params)
            cursor.row_factory = sqlite3.Row
            return list(cursor.fetchall())

    def applied_migrations(self) -> list[str]:
        with self._lock:
            return migrations.applied(self._conn)

    def audit(
        self,
        conn: sqlite3.Connection,
        *,
        actor: str,
        action: str,
        target: str,
        old: Any = None,
        new: Any = None,
    ) -> None:
        """Record one change inside the caller's transaction, so both land or neither does."""
        conn.execute(
            "INSERT INTO audit (at, actor, action, target, old, new) VALUES (?, ?, ?, ?, ?, ?)",
            (
                now_iso(),
                actor,
                action,
                target,
                None if old is None else json.dumps(old, sort_keys=True),
                None if new is None else json.dumps(new, sort_keys=True),
            ),
        )

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.query("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return [
            {
                **dict(row),
                "old": None if row["old"] is None else json.loads(row["old"]),
                "new": None if row["new"] is None else json.loads(row["new"]),
            }
            for row in rows
        ]
