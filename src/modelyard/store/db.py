"""One SQLite database in WAL mode, migrated on open.

The store is used from one thread at a time through a lock; async callers go through
``asyncio.to_thread`` so the event loop never waits on the disk.

SQLite's own errors never leave this module: a write SQLite refuses (read-only file, full or
failing disk, locked past ``busy_timeout``) is ``StoreUnwritable`` (503), a read that fails is
``StoreError`` (503), a constraint the change breaks is ``Conflict`` (409) and text SQLite
cannot encode (a lone surrogate such as ``"\\ud800"``) is ``BadRequest`` (400). Without this,
a read-only store made every ``/api`` write a plain-text 500 and killed the supervisor tasks
that record processes.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelyard.errors import BadRequest, Conflict, ModelyardError, StoreError, StoreUnwritable
from modelyard.store import migrations


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Store:
    """The embedded database. Open with ``Store.open(path)``; close with ``close()``."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None = None) -> None:
        self._conn = conn
        self._lock = threading.RLock()
        self.path = path

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
            store = cls(conn, path)
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
        """A write transaction (BEGIN IMMEDIATE): all of it lands, or none of it.

        Raises StoreUnwritable when SQLite refuses the write, Conflict for a broken
        constraint, BadRequest for text it cannot encode; the block's own errors go through
        unchanged. Either way the transaction is rolled back and the connection is usable
        again, so writes succeed as soon as the store can be written.
        """
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, ModelyardError):
                    raise
                translated = self._translate(exc, "written")
                if translated is None:
                    raise
                raise translated from exc

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """The rows ``sql`` selects. Raises StoreError when the store cannot be read."""
        with self._lock:
            try:
                cursor = self._conn.execute(sql, params)
                cursor.row_factory = sqlite3.Row
                return list(cursor.fetchall())
            except (sqlite3.Error, UnicodeEncodeError) as exc:
                translated = self._translate(exc, "read")
                if translated is None:
                    raise
                raise translated from exc

    def _rollback(self) -> None:
        # A failed COMMIT may already have rolled back (SQLITE_IOERR does); a failing
        # ROLLBACK must not hide the error that caused it.
        with contextlib.suppress(sqlite3.Error):  # a closed connection raises here too
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")

    def _translate(self, exc: BaseException, doing: str) -> ModelyardError | None:
        """Our error for one of SQLite's (a closed connection included); None for anything
        else (a bug: let it through)."""
        if isinstance(exc, UnicodeEncodeError):
            bad = exc.object[exc.start : exc.end]
            return BadRequest(f"a text value is not valid Unicode ({bad!a}); send UTF-8")
        if isinstance(exc, sqlite3.IntegrityError):
            return Conflict(f"the store refused the change: {exc}")
        if not isinstance(exc, sqlite3.Error):
            return None
        where = f" at {self.path}" if self.path is not None else ""
        if doing == "written":
            return StoreUnwritable(
                f"the store{where} cannot be written ({exc}); nothing was changed"
            )
        return StoreError(f"the store{where} cannot be read ({exc})")

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
