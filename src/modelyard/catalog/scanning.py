"""The steps of a scan that touch no store: find, fingerprint, read headers, compare.

``Catalog.rescan`` runs them in order and writes what ``diff`` plans in one transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from modelyard.bundle.models import link_bundled
from modelyard.catalog.discovery_cache import DiscoveryCache
from modelyard.catalog.gguf import read_header
from modelyard.catalog.grouping import HeaderOrError, PhysicalFile
from modelyard.catalog.model import Model
from modelyard.catalog.sources import FoundFile, SourceScan, escape_name, found_file
from modelyard.catalog.sources.folders import scan_folders
from modelyard.catalog.sources.hf import hf_cache_dir, scan_hf
from modelyard.catalog.sources.ollama import ollama_models_dir, scan_ollama
from modelyard.errors import GGUFError
from modelyard.settings import CuratedModel, Settings
from modelyard.store.catalog import CatalogRow

# Bump when what a scan builds from the same files changes, so the next scan rebuilds.
CATALOG_FORMAT = 1


@dataclass(frozen=True)
class ScanProgress:
    """Where a scan is: files found by the sources, headers read of those to read."""

    files_found: int
    headers_read: int
    headers_to_read: int


ProgressCallback = Callable[[ScanProgress], None]


@dataclass(frozen=True)
class ScanReport:
    """What a rescan found and changed. Ids are sorted; ``duration_s`` is wall time."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    models: int = 0
    errors: int = 0
    files: int = 0
    headers_read: int = 0
    warnings: tuple[str, ...] = ()
    unchanged_inputs: bool = False  # the fingerprint matched: nothing was read or written
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("added", "removed", "changed", "warnings"):
            data[name] = list(data[name])
        return data


@dataclass
class Plan:
    """What one scan will write to the ``catalog`` table, and the ids it reports."""

    upserts: dict[str, CatalogRow] = field(default_factory=dict)
    deletes: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()


def discover(settings: Settings, remembered: Iterable[Path]) -> list[SourceScan]:
    """Run every enabled source: one stat per file, no file opened.

    The bundled models (assembled once by ``scripts/setup.sh`` in ``settings.bundle_dir``) are
    hard-linked into the data folder on first use (see ``bundle.models.link_bundled``).
    Warnings name paths escaped (``escape_name``): a folder whose name is not UTF-8 must not
    make the report unstorable or unprintable.
    """
    discovery = settings.discovery
    scans: list[SourceScan] = []
    if discovery.default_model:
        paths = link_bundled(settings.bundle_dir, settings.models_dir)
        found = tuple(found_file(str(path), FoundFile("", "default")) for path in paths)
        scans.append(SourceScan(found))
    if discovery.hf:
        scans.append(scan_hf(hf_cache_dir(discovery.hf_cache)))
    if discovery.ollama:
        scans.append(scan_ollama(ollama_models_dir(discovery.ollama_models)))
    scans.append(scan_folders([*discovery.folders, *remembered]))
    return [replace(scan, warnings=tuple(map(escape_name, scan.warnings))) for scan in scans]


def fingerprint(
    settings: Settings, found: Sequence[FoundFile], curated: Sequence[CuratedModel]
) -> str:
    """A hash of everything a scan builds from: equal fingerprints, equal catalogs."""
    inputs = (
        CATALOG_FORMAT,
        settings.tiers,
        settings.discovery,
        list(found),
        [c.model_dump(mode="json") for c in curated],
    )
    return hashlib.sha256(repr(inputs).encode("utf-8", "surrogateescape")).hexdigest()


def read_headers(
    files: Sequence[PhysicalFile],
    cache: DiscoveryCache,
    max_bytes: int,
    progress: ProgressCallback | None,
    found: int,
) -> tuple[dict[str, HeaderOrError], int]:
    """Headers (or read errors) by file key, from the cache where it is still valid, else read
    now and put in the cache. Returns them and how many were read."""
    headers: dict[str, HeaderOrError] = {}
    to_read: list[PhysicalFile] = []
    for file in files:
        if file.primary.error is not None:
            continue
        cached = cache.get(file)
        if cached is not None:
            headers[file.key] = cached
        else:
            to_read.append(file)
    for done, file in enumerate(to_read, start=1):
        result = read_one(file.primary.path, max_bytes)
        headers[file.key] = result
        if not isinstance(result, str):
            cache.put(file, result)
        if progress is not None:
            progress(ScanProgress(found, done, len(to_read)))
    return headers, len(to_read)


def read_one(path: str, max_bytes: int) -> HeaderOrError:
    """The header, or why it cannot be read. A bug in the reader must not stop the scan."""
    try:
        return read_header(Path(path), max_bytes)
    except GGUFError as exc:
        return exc.message
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    except Exception as exc:
        return f"cannot parse the header: {type(exc).__name__}: {exc}"


def diff(previous: dict[str, CatalogRow], built: Sequence[tuple[Model, str | None]]) -> Plan:
    """Compare the records built now (with their file keys) with the stored rows."""
    plan = Plan()
    added: list[str] = []
    changed: list[str] = []
    for model, file_key in built:
        row = CatalogRow(
            file_key, model.path, json.dumps(model.to_dict(template=True), sort_keys=True)
        )
        old = previous.get(model.id)
        if old == row:
            continue
        plan.upserts[model.id] = row
        if old is None:
            added.append(model.id)
        elif old.data != row.data:
            changed.append(model.id)
    plan.deletes = tuple(sorted(set(previous) - {model.id for model, _ in built}))
    plan.added = tuple(sorted(added))
    plan.changed = tuple(sorted(changed))
    return plan
