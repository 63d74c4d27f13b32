"""Schema migrations, in order. Append new ones to ``MIGRATIONS``; never edit one that has shipped.

sqlite_utils's ``Migrations`` applies them and records each one in ``_sqlite_migrations``.
Importing sqlite_utils costs about 25 MB of resident memory (``sqlite_utils.db`` imports numpy
when it is installed), so ``apply`` reads the applied names with plain sqlite3 first and imports
sqlite_utils only when a migration is pending: a server over an existing store never loads it.
"""

from __future__ import annotations

import sqlite3
from typing import Protocol

SET_NAME = "modelyard"
TABLE = "_sqlite_migrations"  # sqlite_utils.Migrations.migrations_table


class Executor(Protocol):
    """What a migration runs SQL on: sqlite_utils's ``Database`` (and sqlite3's connection)."""

    def execute(self, sql: str, /) -> object: ...


def m001_catalog(db: Executor) -> None:
    db.execute(
        """
        CREATE TABLE discovery_cache (
            file_key TEXT PRIMARY KEY,      -- device:inode of the resolved file
            path TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            header TEXT NOT NULL            -- JSON of the parsed header, or {"error": ...}
        )
        """
    )
    db.execute(
        """
        CREATE TABLE catalog (
            id TEXT PRIMARY KEY,
            file_key TEXT,                  -- NULL for curated entries
            path TEXT,                      -- the model's path, to keep its id when it changes
            data TEXT NOT NULL,             -- JSON of the discovered model, before overrides
            seen_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE catalog_scans (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            fingerprint TEXT NOT NULL,      -- hash of every file found and the inputs used
            models INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            report TEXT NOT NULL            -- JSON of the scan report
        )
        """
    )
    db.execute(
        """
        CREATE TABLE catalog_folders (
            path TEXT PRIMARY KEY,          -- a folder named to `modelyard scan PATH`, kept
            added_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE curated (
            id TEXT PRIMARY KEY,            -- curated entries imported (config ones live in YAML)
            data TEXT NOT NULL,             -- JSON of modelyard.settings.CuratedModel
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE overrides (
            model_id TEXT PRIMARY KEY,
            data TEXT NOT NULL,             -- JSON of modelyard.catalog.model.Overrides
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            old TEXT,
            new TEXT
        )
        """
    )


def m002_fleet(db: Executor) -> None:
    db.execute(
        """
        CREATE TABLE instances (
            id TEXT PRIMARY KEY,            -- model_id:NN
            model_id TEXT NOT NULL,
            number INTEGER NOT NULL,        -- NN of the id, 1-99
            port INTEGER NOT NULL,          -- assigned at create; moved if taken at start
            config TEXT NOT NULL,           -- JSON of modelyard.fleet.instance.InstanceConfig
            desired TEXT NOT NULL DEFAULT 'stopped',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE processes (
            instance_id TEXT PRIMARY KEY,
            pid INTEGER NOT NULL,
            pgid INTEGER NOT NULL,
            create_time REAL NOT NULL,      -- psutil's create_time, to tell a reused pid apart
            port INTEGER NOT NULL,
            started_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE memory_measurements (
            model_id TEXT NOT NULL,
            ctx INTEGER NOT NULL,
            gpu_layers INTEGER NOT NULL,
            measured TEXT NOT NULL,         -- JSON: buffer sizes llama-server reported
            at TEXT NOT NULL,
            PRIMARY KEY (model_id, ctx, gpu_layers)
        )
        """
    )


def m003_figures(db: Executor) -> None:
    db.execute(
        """
        CREATE TABLE requests (
            id INTEGER PRIMARY KEY,
            request_id TEXT NOT NULL,
            model_id TEXT,                  -- NULL when the request failed before resolution
            instance_id TEXT,
            route TEXT NOT NULL,            -- why this instance was chosen
            endpoint TEXT NOT NULL,         -- chat | completions | embeddings
            started_at REAL NOT NULL,       -- unix time
            ttft_s REAL,
            latency_s REAL NOT NULL,
            tokens_in INTEGER,
            tokens_out INTEGER,
            tokens_per_s REAL,
            outcome TEXT NOT NULL,          -- ok | error | cancelled
            status INTEGER NOT NULL,
            error TEXT,
            stream INTEGER NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX requests_model_started ON requests (model_id, started_at)")
    db.execute("CREATE INDEX requests_instance_started ON requests (instance_id, started_at)")
    db.execute("CREATE INDEX requests_started ON requests (started_at)")


def m004_control(db: Executor) -> None:
    db.execute(
        """
        CREATE TABLE presets (
            name TEXT PRIMARY KEY,          -- a user's system-prompt preset (built-ins are code)
            data TEXT NOT NULL,             -- JSON: title, prompt, description
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE control_state (
            key TEXT PRIMARY KEY,           -- e.g. 'active_profile'
            value TEXT NOT NULL,            -- JSON
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX audit_at ON audit (at)")


def m005_process_marks(db: Executor) -> None:
    # The spawn mark each server's environment carries (modelyard.fleet.spawn), to find what
    # it started outside its process group after a crash. NULL in rows written before.
    db.execute("ALTER TABLE processes ADD COLUMN mark TEXT")


MIGRATIONS = (m001_catalog, m002_fleet, m003_figures, m004_control, m005_process_marks)


def applied(conn: sqlite3.Connection) -> list[str]:
    """The names applied to ``conn``'s database, in the order they were applied."""
    table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
    ).fetchone()
    if table is None:
        return []
    rows = conn.execute(
        f"SELECT name FROM {TABLE} WHERE migration_set = ? ORDER BY rowid", (SET_NAME,)
    )
    return [str(name) for (name,) in rows]


def pending(conn: sqlite3.Connection) -> list[str]:
    """The names of ``MIGRATIONS`` not yet applied, in order."""
    done = set(applied(conn))
    return [m.__name__ for m in MIGRATIONS if m.__name__ not in done]


def apply(conn: sqlite3.Connection) -> None:
    """Apply every pending migration, each in a transaction with its record.

    Imports sqlite_utils only when something is pending. Raises what the failing migration
    raised (sqlite3.DatabaseError); that migration stays pending.
    """
    if not pending(conn):
        return
    from sqlite_utils import Database, Migrations

    migrations = Migrations(SET_NAME)
    for migration in MIGRATIONS:
        migrations()(migration)
    migrations.apply(Database(conn))
