"""Schema migrations, in order. Append new ones; never edit one that has shipped."""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("modelyard")


@migrations()
def m001_catalog(db: Database) -> None:
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
            data TEXT NOT NULL,             -- JSON of the discovered model, before overrides
            seen_at TEXT NOT NULL
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


@migrations()
def m002_fleet(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE instances (
            id TEXT PRIMARY KEY,            -- model_id:NN
            model_id TEXT NOT NULL,
            config TEXT NOT NULL,           -- JSON of the instance's settings
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
