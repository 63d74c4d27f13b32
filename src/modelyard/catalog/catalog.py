"""The catalog: every model modelyard knows, discovered or curated, with the user's overrides.

State lives in the store, so several processes (the server, the CLI) see one catalog:

- ``catalog``: the discovered records (and curated ones, for reporting changes) of the last
  scan that changed anything, before overrides;
- ``overrides``: what the user set, by model id; kept when the model disappears;
- ``discovery_cache``: parsed headers by file identity;
- ``catalog_scans``: one row per scan that changed anything, with a fingerprint of its inputs;
- ``catalog_folders``: folders named to ``rescan``, scanned again on every later scan;
- ``curated``: curated entries that came in through ``import_`` (config ones live in YAML).

A rescan whose inputs (every file found, with its identity, size and times; the curated
entries; the thresholds) hash to the last fingerprint stops after one stat per file and writes
nothing. Otherwise headers are read only for files the cache does not hold, and every write of
the scan lands in one transaction.
"""

from __future__ import annotations

import difflib
import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from modelyard.catalog.build import curated_model, discovered_model, unit_slug
from modelyard.catalog.discovery_cache import DiscoveryCache
from modelyard.catalog.grouping import HeaderOrError, PhysicalFile, build_units, merge_paths
from modelyard.catalog.ids import IdRequest, assign_ids, previous_ids
from modelyard.catalog.model import Model, Overrides
from modelyard.catalog.overrides import (
    apply_overrides,
    check_bool,
    check_display_name,
    check_field,
    check_roles,
    check_tier,
    overrides_from_dict,
)
from modelyard.catalog.scanning import (
    Plan,
    ProgressCallback,
    ScanProgress,
    ScanReport,
    StoredRow,
    diff,
    discover,
    fingerprint,
    read_headers,
)
from modelyard.catalog.transfer import export_document, parse_document
from modelyard.errors import ConfigError, ModelNotFound, ValidationFailed
from modelyard.settings import CuratedModel, Settings, Tier
from modelyard.store import Store
from modelyard.store.db import now_iso

__all__ = ["UNSET", "Catalog", "ProgressCallback", "ScanProgress", "ScanReport"]

_KEPT_SCANS = 100


class _Unset:
    """The default of ``set_overrides`` arguments: leave this field as it is."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


class Catalog:
    """Every model modelyard knows. Cheap to build; nothing is read until it is asked for.

    Safe to use from one thread at a time (the store serialises access); several processes
    may share one database: each write is one transaction, and readers always load the
    latest committed state.
    """

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store

    # -- scanning -------------------------------------------------------------------------

    def rescan(
        self, extra_paths: Iterable[Path] = (), progress: ProgressCallback | None = None
    ) -> ScanReport:
        """Find every model file again and update the catalog.

        ``extra_paths`` (folders or ``.gguf`` files) are scanned now and remembered for later
        scans. Raises ValidationFailed for an extra path that does not exist; a broken file or
        a corrupt cache entry never stops the scan (it is listed with ``error``, or reported
        in ``warnings``). ``progress`` is called from this thread as files are found and read.
        """
        started = time.perf_counter()
        self._remember_folders(extra_paths)
        scans = discover(self._settings, self.folders())
        found = [f for scan in scans for f in scan.files]
        warnings = tuple(w for scan in scans for w in scan.warnings)
        if progress is not None:
            progress(ScanProgress(len(found), 0, 0))
        curated = self.curated()
        digest = fingerprint(self._settings, found, curated)
        last = self._last_scan()
        if last is not None and last[0] == digest:
            return ScanReport(
                models=last[1],
                errors=last[2],
                files=len(found),
                warnings=warnings,
                unchanged_inputs=True,
                duration_s=time.perf_counter() - started,
            )
        cache = DiscoveryCache.load(self._store)
        files = merge_paths(found)
        max_bytes = self._settings.discovery.max_header_bytes
        headers, read = read_headers(files, cache, max_bytes, progress, len(found))
        models = self._build(files, headers, curated)
        plan = diff(self._stored_rows(), models)
        errors = sum(1 for model, _ in models if model.error is not None)
        report = ScanReport(
            added=plan.added,
            removed=plan.deletes,
            changed=plan.changed,
            models=len(models),
            errors=errors,
            files=len(found),
            headers_read=read,
            warnings=warnings,
        )
        self._write(cache, plan, digest, report)
        return replace(report, duration_s=time.perf_counter() - started)

    def _build(
        self,
        files: list[PhysicalFile],
        headers: dict[str, HeaderOrError],
        curated: list[CuratedModel],
    ) -> list[tuple[Model, str | None]]:
        """Every record with the file key it is stored under (None for curated entries)."""
        units = build_units(files, headers)
        lookup = previous_ids(
            (r[0], r[1], r[2])
            for r in self._store.query(
                "SELECT id, file_key, path FROM catalog WHERE file_key IS NOT NULL"
            )
        )
        requests = [
            IdRequest(
                slug=unit_slug(unit),
                path=unit.first.primary.path,
                previous=lookup.get(f"key:{unit.first.key}")
                or lookup.get(f"path:{unit.first.primary.path}"),
            )
            for unit in units
        ]
        ids = assign_ids(requests, reserved={c.id for c in curated})
        thresholds = self._settings.tiers
        built: list[tuple[Model, str | None]] = [
            (discovered_model(unit, model_id, thresholds), unit.first.key)
            for unit, model_id in zip(units, ids, strict=True)
        ]
        built += [(curated_model(entry, thresholds), None) for entry in curated]
        return built

    def _stored_rows(self) -> dict[str, StoredRow]:
        rows = self._store.query("SELECT id, file_key, path, data FROM catalog")
        return {r[0]: StoredRow(r[1], r[2], r[3]) for r in rows}

    def _last_scan(self) -> tuple[str, int, int] | None:
        rows = self._store.query(
            "SELECT fingerprint, models, errors FROM catalog_scans ORDER BY id DESC LIMIT 1"
        )
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def _write(self, cache: DiscoveryCache, plan: Plan, digest: str, report: ScanReport) -> None:
        seen_at = now_iso()
        with self._store.transaction() as conn:
            cache.write(conn)
            conn.executemany("DELETE FROM catalog WHERE id = ?", ((i,) for i in plan.deletes))
            conn.executemany(
                "INSERT OR REPLACE INTO catalog (id, file_key, path, data, seen_at) "
                "VALUES (?, ?, ?, ?, ?)",
                ((i, r.file_key, r.path, r.data, seen_at) for i, r in plan.upserts.items()),
            )
            cursor = conn.execute(
                "INSERT INTO catalog_scans (at, fingerprint, models, errors, report) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    seen_at,
                    digest,
                    report.models,
                    report.errors,
                    json.dumps(report.to_dict()),
                ),
            )
            conn.execute(
                "DELETE FROM catalog_scans WHERE id <= ?", ((cursor.lastrowid or 0) - _KEPT_SCANS,)
            )

    # -- folders ----------------------------------------------------------------------------

    def folders(self) -> list[Path]:
        """Folders remembered from earlier ``rescan(extra_paths)`` calls (config ones aside)."""
        return [Path(r[0]) for r in self._store.query("SELECT path FROM catalog_folders")]

    def _remember_folders(self, paths: Iterable[Path]) -> None:
        wanted: list[str] = []
        for path in paths:
            absolute = path.expanduser().absolute()
            if not absolute.exists():
                raise ValidationFailed(f"{path}: no such file or folder", param="paths")
            wanted.append(str(absolute))
        known = {str(p) for p in self.folders()}
        new = [p for p in dict.fromkeys(wanted) if p not in known]
        if not new:
            return
        with self._store.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO catalog_folders (path, added_at) VALUES (?, ?)",
                ((p, now_iso()) for p in new),
            )
            for folder in new:
                self._store.audit(
                    conn, actor="scan", action="folder.add", target=folder, new=folder
                )

    def forget_folders(self, paths: Iterable[Path], *, actor: str) -> list[Path]:
        """Stop scanning remembered folders; returns those that were remembered. The next
        rescan drops their models."""
        known = {str(p) for p in self.folders()}
        forgotten = [
            p for p in dict.fromkeys(str(x.expanduser().absolute()) for x in paths) if p in known
        ]
        with self._store.transaction() as conn:
            for path in forgotten:
                conn.execute("DELETE FROM catalog_folders WHERE path = ?", (path,))
                self._store.audit(conn, actor=actor, action="folder.forget", target=path, old=path)
        return [Path(p) for p in forgotten]

    # -- reading ----------------------------------------------------------------------------

    def models(self) -> list[Model]:
        """Every model, overrides applied, sorted by id. Scans first if never scanned."""
        if self._last_scan() is None:
            self.rescan()
        curated = self.curated()
        curated_ids = {c.id for c in curated}
        thresholds = self._settings.tiers
        overrides = self._overrides()
        result: list[Model] = []
        rows = self._store.query("SELECT data FROM catalog WHERE file_key IS NOT NULL")
        for row in rows:
            model = Model.from_dict(json.loads(row[0]))
            if model.id in curated_ids:
                continue  # a curated entry added since the last scan takes the id
            ov = overrides.get(model.id, Overrides())
            result.append(apply_overrides(model, ov, thresholds, auto_tier=model.error is None))
        for entry in curated:
            ov = overrides.get(entry.id, Overrides())
            model = curated_model(entry, thresholds)
            result.append(apply_overrides(model, ov, thresholds, auto_tier=entry.tier is None))
        return sorted(result, key=lambda m: m.id)

    def get(self, model_id: str) -> Model:
        """One model by id. Raises ModelNotFound naming the closest ids."""
        models = self.models()
        for model in models:
            if model.id == model_id:
                return model
        close = difflib.get_close_matches(model_id, [m.id for m in models], n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ModelNotFound(f"no model '{model_id}' in the catalog{hint}", param="model")

    def curated(self) -> list[CuratedModel]:
        """Curated entries: those in config, then imported ones whose id config does not use."""
        from_config = list(self._settings.curated)
        ids = [c.id for c in from_config]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ConfigError(f"curated: id '{duplicates[0]}' is used twice")
        rows = self._store.query("SELECT id, data FROM curated ORDER BY id")
        stored = [CuratedModel.model_validate_json(r[1]) for r in rows if r[0] not in ids]
        return from_config + stored

    # -- overrides --------------------------------------------------------------------------

    def overrides_for(self, model_id: str) -> Overrides:
        """What the user set for one id (empty when nothing); the id need not be present."""
        rows = self._store.query("SELECT data FROM overrides WHERE model_id = ?", (model_id,))
        return overrides_from_dict(json.loads(rows[0][0]), model_id) if rows else Overrides()

    def _overrides(self) -> dict[str, Overrides]:
        rows = self._store.query("SELECT model_id, data FROM overrides")
        return {r[0]: overrides_from_dict(json.loads(r[1]), r[0]) for r in rows}

    def set_overrides(
        self,
        model_id: str,
        *,
        actor: str,
        tier: Tier | None = UNSET,
        thinking: bool | None = UNSET,
        enabled: bool | None = UNSET,
        display_name: str | None = UNSET,
        roles: dict[str, int] | None = UNSET,
    ) -> Model:
        """Set the given fields (None clears one; UNSET leaves it). ``roles`` replaces the
        overridden roles. Raises ModelNotFound, or ValidationFailed naming the field. The change
        and its audit entry land together; setting what is already set writes nothing."""
        self.get(model_id)
        changes: dict[str, Any] = {}
        if tier is not UNSET:
            changes["tier"] = None if tier is None else check_tier(tier)
        if thinking is not UNSET:
            changes["thinking"] = None if thinking is None else check_bool(thinking, "thinking")
        if enabled is not UNSET:
            changes["enabled"] = None if enabled is None else check_bool(enabled, "enabled")
        if display_name is not UNSET:
            changes["display_name"] = (
                None if display_name is None else check_display_name(display_name)
            )
        if roles is not UNSET:
            changes["roles"] = None if roles is None else check_roles(roles) or None
        self._change_overrides(model_id, changes, actor=actor, action="override.set")
        return self.get(model_id)

    def clear_override(self, model_id: str, field_name: str, *, actor: str) -> Model:
        """Forget one overridden field (``tier``, ``thinking``, ``enabled``, ``display_name``,
        ``roles``). Raises ModelNotFound, or ValidationFailed for an unknown field."""
        name = check_field(field_name)
        self.get(model_id)
        self._change_overrides(model_id, {name: None}, actor=actor, action="override.clear")
        return self.get(model_id)

    def _change_overrides(
        self, model_id: str, changes: dict[str, Any], *, actor: str, action: str
    ) -> None:
        with self._store.transaction() as conn:
            row = conn.execute(
                "SELECT data FROM overrides WHERE model_id = ?", (model_id,)
            ).fetchone()
            old = json.loads(row[0]) if row else {}
            new = {k: v for k, v in {**old, **changes}.items() if v is not None}
            if new == old:
                return
            _put_overrides(conn, model_id, new)
            self._store.audit(conn, actor=actor, action=action, target=model_id, old=old, new=new)

    # -- export / import --------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """Overrides and curated entries as one JSON-ready document ``import_`` accepts."""
        return export_document(self._overrides(), self.curated())

    def import_(self, data: Any, *, actor: str) -> None:
        """Replace every override and every imported curated entry with those in ``data``.

        All of ``data`` is checked before anything is written: a bad document raises
        ValidationFailed naming what is wrong and changes nothing. Curated entries defined in
        config must match it (config is where they are edited). Each change is audited.
        """
        document = parse_document(data, self._settings.curated)
        curated = {k: v.model_dump(mode="json") for k, v in document.curated.items()}
        with self._store.transaction() as conn:
            self._replace_all(conn, "overrides", "model_id", document.overrides, actor=actor)
            self._replace_all(conn, "curated", "id", curated, actor=actor)

    def _replace_all(
        self,
        conn: sqlite3.Connection,
        table: Literal["overrides", "curated"],
        key: Literal["model_id", "id"],
        new: dict[str, Any],
        *,
        actor: str,
    ) -> None:
        """Make ``table`` hold exactly ``new`` (JSON by key), auditing each row that changes."""
        rows = conn.execute(f"SELECT {key}, data FROM {table}").fetchall()
        old = {r[0]: json.loads(r[1]) for r in rows}
        for name in sorted(set(old) | set(new)):
            if old.get(name) == new.get(name):
                continue
            if name in new:
                conn.execute(
                    f"INSERT OR REPLACE INTO {table} ({key}, data, updated_at) VALUES (?, ?, ?)",
                    (name, json.dumps(new[name], sort_keys=True), now_iso()),
                )
            else:
                conn.execute(f"DELETE FROM {table} WHERE {key} = ?", (name,))
            action = "override.import" if table == "overrides" else "curated.import"
            self._store.audit(
                conn, actor=actor, action=action, target=name, old=old.get(name), new=new.get(name)
            )


def _put_overrides(conn: sqlite3.Connection, model_id: str, data: dict[str, Any]) -> None:
    if not data:
        conn.execute("DELETE FROM overrides WHERE model_id = ?", (model_id,))
        return
    conn.execute(
        "INSERT OR REPLACE INTO overrides (model_id, data, updated_at) VALUES (?, ?, ?)",
        (model_id, json.dumps(data, sort_keys=True), now_iso()),
    )
