"""The catalog: every model modelyard knows, discovered or curated, with the user's overrides.

State lives in the store (``modelyard.store.catalog``), so several processes (the server,
the CLI) see one catalog:

- ``catalog``: the discovered records (and curated ones, for reporting changes) of the last
  scan that changed anything, before overrides;
- ``overrides``: what the user set, by model id; kept when the model disappears;
- ``discovery_cache``: parsed headers by file identity;
- ``catalog_scans``: one row per scan that changed anything, with a fingerprint of its inputs;
- ``catalog_folders``: folders named to ``rescan``, scanned again on every later scan;
- ``curated``: curated entries that came in through ``import_`` (config ones live in YAML).

Readers get one immutable ``CatalogSnapshot`` built from those tables (see ``Catalog``).

A rescan whose inputs (every file found, with its identity, size and times; the curated
entries; the thresholds) hash to the last fingerprint stops after one stat per file and writes
nothing. Otherwise headers are read only for files the cache does not hold, and every write of
the scan lands in one transaction.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from modelyard.catalog.build import curated_model, discovered_model, remote_entry, unit_slug
from modelyard.catalog.discovery_cache import DiscoveryCache
from modelyard.catalog.grouping import HeaderOrError, PhysicalFile, build_units, merge_paths
from modelyard.catalog.ids import IdRequest, assign_ids, previous_ids
from modelyard.catalog.model import Model, Overrides
from modelyard.catalog.overrides import (
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
    diff,
    discover,
    fingerprint,
    read_headers,
)
from modelyard.catalog.snapshot import CatalogSnapshot, assemble
from modelyard.catalog.sources import escape_name, is_utf8
from modelyard.catalog.transfer import export_document, parse_document
from modelyard.errors import ConfigError, ModelNotFound, ValidationFailed
from modelyard.events import EventBus
from modelyard.settings import CuratedModel, Settings, Tier
from modelyard.store import Store
from modelyard.store import catalog as tables
from modelyard.store.catalog import CatalogRow, JsonTable, ScanSummary
from modelyard.store.db import now_iso

__all__ = [
    "UNSET",
    "Catalog",
    "CatalogSnapshot",
    "Listener",
    "ProgressCallback",
    "ScanProgress",
    "ScanReport",
]

logger = logging.getLogger(__name__)

_KEPT_SCANS = 100

Listener = Callable[[CatalogSnapshot], None]


class _Unset:
    """The default of ``set_overrides`` arguments: leave this field as it is."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


class Catalog:
    """Every model modelyard knows. Cheap to build; nothing is read until it is asked for.

    Reads (``snapshot``, ``models``, ``get``, ``curated``) answer from one immutable
    ``CatalogSnapshot``. The first read builds it from the store, blocking the caller's thread
    (a caller on the event loop runs ``load`` once, in a thread, at start); later reads do no
    I/O. No read scans, except ``load`` on a catalog that was never scanned.

    Each change made through this object (a rescan that changed anything, ``set_overrides``,
    ``clear_override``, ``import_``) rebuilds the snapshot from the store and swaps it in;
    ``reload`` does the same for changes another process made (the CLI beside a server). A
    swap to different content is announced in the thread that made it (a worker thread when
    called through ``asyncio.to_thread``): first a ``catalog.changed`` event on ``events``,
    ``{"version": N, "cause": "rescan" | "override" | "import" | "reload", ...}``, then each
    listener added with ``add_listener``. The first build is not announced.

    Safe from several threads at once: the store serialises writes and one lock orders the
    swaps, so versions follow the changes. Several processes may share one database: each
    write is one transaction.
    """

    def __init__(self, settings: Settings, store: Store, events: EventBus | None = None) -> None:
        self._settings = settings
        self._store = store
        self._events = events
        self._snapshot: CatalogSnapshot | None = None
        self._listeners: list[Listener] = []
        # Orders the swaps, and the first load. Reentrant: a listener may read or change the
        # catalog from inside an announcement, and load's scan swaps.
        self._swap = threading.RLock()
        self._loaded = False
        # Curated entries derived from remote servers' /v1/models (set_remote_models), by the
        # remote entry's id; kept in memory only: they are listed again at each start.
        self._remote: dict[str, tuple[CuratedModel, ...]] = {}

    # -- the snapshot -----------------------------------------------------------------------

    def snapshot(self) -> CatalogSnapshot:
        """The current snapshot. The first call builds it from the store (blocking this
        thread); later calls do no I/O. Never scans: see ``load``. Raises ConfigError when
        config names one curated id twice."""
        current = self._snapshot
        if current is not None:
            return current
        with self._swap:
            if self._snapshot is None:
                self._snapshot = self._read_snapshot(version=1)
            return self._snapshot

    def load(self) -> CatalogSnapshot:
        """Make the catalog ready to read and return the snapshot.

        The one read that may scan: when the store holds no scan at all (a new data folder),
        this runs ``rescan()`` first, which reads every model header and writes the bundled
        default model when it is enabled. Otherwise it only builds the snapshot (if not built
        yet). Blocks on the disk: from the event loop, call it once at start in a thread.
        Later calls return the current snapshot without I/O.
        """
        if not self._loaded:
            with self._swap:
                if not self._loaded:
                    if tables.last_scan(self._store) is None:
                        self.rescan()
                    self._loaded = True
        return self.snapshot()

    def reload(self) -> bool:
        """Read the store again, for changes another process made, and swap the snapshot in
        (announcing it, cause ``reload``) when its content differs. Returns whether it did
        (False too when no snapshot was built yet: one is built now). Blocks on the store."""
        return self._refresh("reload")

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(snapshot)`` after each announced swap, after the ``catalog.changed``
        event, in the thread that made the change: often a worker thread of
        ``asyncio.to_thread``, so a listener that belongs to the event loop hops there itself
        (``loop.call_soon_threadsafe``). It runs under the swap lock, so it must return
        quickly and must not wait on another thread that uses this catalog; an exception it
        raises is logged and the other listeners still run. Returns the function that
        removes it."""
        with self._swap:
            self._listeners.append(listener)

        def remove() -> None:
            with self._swap:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def _refresh(self, cause: str, **details: Any) -> bool:
        """Rebuild from the store; swap in and announce when the content differs."""
        with self._swap:
            old = self._snapshot
            new = self._read_snapshot(version=1 if old is None else old.version + 1)
            if old is not None and new.same_content(old):
                return False
            self._snapshot = new
            if old is None:
                return False
            self._announce(new, {"cause": cause, **details})
            return True

    def _announce(self, snapshot: CatalogSnapshot, details: dict[str, Any]) -> None:
        if self._events is not None:
            self._events.publish("catalog.changed", {"version": snapshot.version, **details})
        for listener in list(self._listeners):
            try:
                listener(snapshot)
            except Exception:
                logger.exception("catalog listener failed")

    def _read_snapshot(self, *, version: int) -> CatalogSnapshot:
        curated = self._stored_curated()
        discovered = [
            Model.from_dict(json.loads(data)) for data in tables.discovered_records(self._store)
        ]
        overrides = self._stored_overrides()
        models = assemble(discovered, curated, overrides, self._settings.tiers)
        return CatalogSnapshot(models, curated, version=version)

    # -- scanning -------------------------------------------------------------------------

    def rescan(
        self, extra_paths: Iterable[Path] = (), progress: ProgressCallback | None = None
    ) -> ScanReport:
        """Find every model file again and update the catalog.

        ``extra_paths`` (folders or ``.gguf`` files) are scanned now and remembered for later
        scans, in the transaction that writes the scan: a scan that fails remembers nothing.
        Raises ValidationFailed, before anything is read, for an extra path that does not
        exist or whose name is not UTF-8 (it could not be stored); a broken file, a file
        whose name is not UTF-8 or a corrupt cache entry never stops the scan (it is listed
        with ``error``, or reported in ``warnings``). ``progress`` is called from this thread
        as files are found and read. A scan that wrote anything rebuilds the snapshot
        (announced as cause ``rescan`` when it differs); one whose inputs are unchanged reads
        nothing more.
        """
        started = time.perf_counter()
        new_folders = self._new_folders(extra_paths)
        scans = discover(self._settings, [*self.folders(), *map(Path, new_folders)])
        found = [f for scan in scans for f in scan.files]
        warnings = tuple(w for scan in scans for w in scan.warnings)
        if progress is not None:
            progress(ScanProgress(len(found), 0, 0))
        curated = self._stored_curated()
        digest = fingerprint(self._settings, found, curated)
        last = tables.last_scan(self._store)
        if last is not None and last.fingerprint == digest:
            if new_folders:
                with self._store.transaction() as conn:
                    self._remember_folders(conn, new_folders)
            return ScanReport(
                models=last.models,
                errors=last.errors,
                files=len(found),
                warnings=warnings,
                unchanged_inputs=True,
                duration_s=time.perf_counter() - started,
            )
        cache = DiscoveryCache.load(self._store)
        files = merge_paths(found)
        max_bytes = self._settings.discovery.max_header_bytes
        headers, read = read_headers(files, cache, max_bytes, progress, len(found))
        stored = tables.catalog_rows(self._store)
        models = self._build(files, headers, curated, stored)
        plan = diff(stored, models)
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
        self._write(cache, plan, digest, report, new_folders)
        self._refresh(
            "rescan", added=list(plan.added), removed=list(plan.deletes), changed=list(plan.changed)
        )
        return replace(report, duration_s=time.perf_counter() - started)

    def _build(
        self,
        files: list[PhysicalFile],
        headers: dict[str, HeaderOrError],
        curated: list[CuratedModel],
        stored: dict[str, CatalogRow],
    ) -> list[tuple[Model, str | None]]:
        """Every record with the file key it is stored under (None for curated entries)."""
        units = build_units(files, headers)
        lookup = previous_ids(
            (model_id, row.file_key, row.path)
            for model_id, row in stored.items()
            if row.file_key is not None
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

    def _write(
        self,
        cache: DiscoveryCache,
        plan: Plan,
        digest: str,
        report: ScanReport,
        new_folders: list[str],
    ) -> None:
        seen_at = now_iso()
        summary = ScanSummary(digest, report.models, report.errors)
        with self._store.transaction() as conn:
            self._remember_folders(conn, new_folders)
            cache.write(conn)
            tables.write_records(conn, plan.deletes, plan.upserts, seen_at)
            tables.record_scan(conn, summary, report.to_dict(), seen_at, keep=_KEPT_SCANS)

    # -- folders ----------------------------------------------------------------------------

    def folders(self) -> list[Path]:
        """Folders remembered from earlier ``rescan(extra_paths)`` calls (config ones aside)."""
        return [Path(p) for p in tables.folders(self._store)]

    def _new_folders(self, paths: Iterable[Path]) -> list[str]:
        """The absolute paths of ``paths`` not remembered yet, in order, without repeats.
        Raises ValidationFailed for one that does not exist or whose name is not UTF-8."""
        wanted: list[str] = []
        for path in paths:
            absolute = path.expanduser().absolute()
            if not is_utf8(str(absolute)):
                raise ValidationFailed(
                    f"{escape_name(str(absolute))}: the name is not valid UTF-8 (shown escaped); "
                    "rename it to scan it",
                    param="paths",
                )
            if not absolute.exists():
                raise ValidationFailed(f"{path}: no such file or folder", param="paths")
            wanted.append(str(absolute))
        known = {str(p) for p in self.folders()}
        return [p for p in dict.fromkeys(wanted) if p not in known]

    def _remember_folders(self, conn: sqlite3.Connection, folders: list[str]) -> None:
        tables.add_folders(conn, folders)
        for folder in folders:
            self._store.audit(conn, actor="scan", action="folder.add", target=folder, new=folder)

    def forget_folders(self, paths: Iterable[Path], *, actor: str) -> list[Path]:
        """Stop scanning remembered folders; returns those that were remembered. The next
        rescan drops their models (the snapshot is unchanged until then)."""
        known = {str(p) for p in self.folders()}
        forgotten = [
            p for p in dict.fromkeys(str(x.expanduser().absolute()) for x in paths) if p in known
        ]
        with self._store.transaction() as conn:
            for path in forgotten:
                tables.remove_folder(conn, path)
                self._store.audit(conn, actor=actor, action="folder.forget", target=path, old=path)
        return [Path(p) for p in forgotten]

    # -- reading ----------------------------------------------------------------------------

    def models(self) -> list[Model]:
        """Every model, overrides applied, sorted by id: the snapshot's (see ``snapshot``)."""
        return list(self.snapshot().models)

    def get(self, model_id: str) -> Model:
        """One model by id, from the snapshot. Raises ModelNotFound naming the closest ids."""
        return self.snapshot().get(model_id)

    def curated(self) -> list[CuratedModel]:
        """Curated entries: those in config, then imported ones whose id config does not use
        (the snapshot's)."""
        return list(self.snapshot().curated)

    def _stored_curated(self) -> list[CuratedModel]:
        from_config = list(self._settings.curated)
        ids = [c.id for c in from_config]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ConfigError(f"curated: id '{duplicates[0]}' is used twice")
        stored = tables.curated_records(self._store)
        imported = [CuratedModel.model_validate_json(v) for k, v in stored.items() if k not in ids]
        taken = set(ids) | {c.id for c in imported}
        remote = [c for entries in self._remote.values() for c in entries if c.id not in taken]
        return from_config + imported + remote

    def set_remote_models(self, entry_id: str, names: Iterable[str]) -> list[str]:
        """Curated models for the remote entry ``entry_id``'s server, one per model name it
        lists (ids ``ENTRY--NAME``, NAME made id-safe): each serves that name through the
        entry's url and key variable. Replaces the entry's earlier list; announced as cause
        ``remote``. Returns the ids. Raises ModelNotFound when no remote entry has that id."""
        with self._swap:
            entry = next(
                (c for c in self._settings.curated if c.id == entry_id and c.engine == "remote"),
                None,
            )
            if entry is None:
                raise ModelNotFound(f"no curated remote entry '{entry_id}'", param="model")
            derived = tuple(remote_entry(entry, name) for name in sorted(set(names)))
            self._remote[entry_id] = derived
            self._refresh("remote", entry=entry_id)
            return [c.id for c in derived]

    def _require(self, model_id: str) -> None:
        """ModelNotFound unless the store holds ``model_id``: the snapshot is asked first, and
        read again on a miss (another process may have added the model since)."""
        if model_id not in self.snapshot():
            self.reload()
            self.get(model_id)

    # -- overrides --------------------------------------------------------------------------

    def overrides_for(self, model_id: str) -> Overrides:
        """What the user set for one id (empty when nothing), read from the store; the id need
        not be present."""
        data = tables.overrides_of(self._store, model_id)
        return Overrides() if data is None else overrides_from_dict(data, model_id)

    def _stored_overrides(self) -> dict[str, Overrides]:
        return {k: overrides_from_dict(v, k) for k, v in tables.overrides(self._store).items()}

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
        and its audit entry land together; setting what is already set writes nothing. A change
        is announced as cause ``override`` with ``model_id`` and ``set`` (the fields given)."""
        self._require(model_id)
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
        if self._change_overrides(model_id, changes, actor=actor, action="override.set"):
            self._refresh("override", model_id=model_id, set=sorted(changes))
        return self.get(model_id)

    def clear_override(self, model_id: str, field_name: str, *, actor: str) -> Model:
        """Forget one overridden field (``tier``, ``thinking``, ``enabled``, ``display_name``,
        ``roles``). Raises ModelNotFound, or ValidationFailed for an unknown field. A change is
        announced as cause ``override`` with ``model_id`` and ``cleared`` (the field)."""
        name = check_field(field_name)
        self._require(model_id)
        if self._change_overrides(model_id, {name: None}, actor=actor, action="override.clear"):
            self._refresh("override", model_id=model_id, cleared=name)
        return self.get(model_id)

    def _change_overrides(
        self, model_id: str, changes: dict[str, Any], *, actor: str, action: str
    ) -> bool:
        """Merge ``changes`` into the stored overrides; returns whether anything was written."""
        with self._store.transaction() as conn:
            old = tables.overrides_of(conn, model_id) or {}
            new = {k: v for k, v in {**old, **changes}.items() if v is not None}
            if new == old:
                return False
            tables.put_json_row(conn, "overrides", model_id, new or None)
            self._store.audit(conn, actor=actor, action=action, target=model_id, old=old, new=new)
        return True

    # -- export / import --------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """Overrides and curated entries, read from the store, as one JSON-ready document
        ``import_`` accepts."""
        return export_document(self._stored_overrides(), self._stored_curated())

    def import_(self, data: Any, *, actor: str) -> None:
        """Replace every override and every imported curated entry with those in ``data``.

        All of ``data`` is checked before anything is written: a bad document raises
        ValidationFailed naming what is wrong and changes nothing. Curated entries defined in
        config must match it (config is where they are edited). Each change is audited; the
        result is announced as cause ``import`` (with ``imported: true``).
        """
        document = parse_document(data, self._settings.curated)
        curated = {k: v.model_dump(mode="json") for k, v in document.curated.items()}
        with self._store.transaction() as conn:
            changed = self._replace_all(conn, "overrides", document.overrides, actor=actor)
            changed |= self._replace_all(conn, "curated", curated, actor=actor)
        if changed:
            self._refresh("import", imported=True)

    def _replace_all(
        self, conn: sqlite3.Connection, table: JsonTable, new: dict[str, Any], *, actor: str
    ) -> bool:
        """Make ``table`` hold exactly ``new`` (JSON by key), auditing each row that changes.
        Returns whether any row changed."""
        old = tables.json_rows(conn, table)
        changed = False
        for name in sorted(set(old) | set(new)):
            if old.get(name) == new.get(name):
                continue
            tables.put_json_row(conn, table, name, new.get(name))
            action = "override.import" if table == "overrides" else "curated.import"
            self._store.audit(
                conn, actor=actor, action=action, target=name, old=old.get(name), new=new.get(name)
            )
            changed = True
        return changed
