"""From found paths to catalog units: one per model, whatever the number of paths and parts.

Pure over its inputs (the found files, their headers or read errors, the parsed names):

1. paths reaching the same resolved file (``dev:ino``) are one ``PhysicalFile``;
2. parts of a split model (``-00001-of-00003.gguf``, or ``split.count`` in the header) are one
   ``Unit`` whose parts are in order; missing parts are an error on the unit;
3. a vision projector (``mmproj*.gguf``, a ``clip`` header, or Ollama's projector layer) is
   paired with the models beside it and is not a unit itself, unless nothing is beside it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from modelyard.catalog.gguf import GGUFHeader
from modelyard.catalog.names import NameInfo, parse_filename
from modelyard.catalog.sources import FoundFile

# Which path names a file reached several ways: the richest source first.
_SOURCE_RANK = {"hf": 0, "ollama": 1, "default": 2, "folder": 3}
# Which projector to pair when a folder holds several: full precision first.
_PROJECTOR_RANK = {"F16": 0, "BF16": 1, "F32": 2, "Q8_0": 3}
_TRAILING_NUMBER = re.compile(r"[-_.]?\d+$")

HeaderOrError = GGUFHeader | str


@dataclass(frozen=True)
class PhysicalFile:
    """One resolved file and every path that reaches it, the one to name it by first."""

    key: str
    found: tuple[FoundFile, ...]

    @property
    def primary(self) -> FoundFile:
        return self.found[0]

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.path for f in self.found))

    def fact(self, attribute: str) -> str | None:
        """The first non-empty source fact (``hf_repo``, ``ollama_name``...) among the paths."""
        for found in self.found:
            value = getattr(found, attribute)
            if value:
                return str(value)
        return None


@dataclass(frozen=True)
class Unit:
    """What becomes one catalog entry.

    ``parts`` is every part of the model in order (one for an unsplit file); ``projector`` the
    paired mmproj; ``error`` why the unit cannot be served; ``lone_projector`` marks a
    projector with no model beside it.
    """

    parts: tuple[PhysicalFile, ...]
    name: NameInfo
    header: GGUFHeader | None
    part_headers: tuple[GGUFHeader | None, ...]
    projector: PhysicalFile | None = None
    error: str | None = None
    lone_projector: bool = False

    @property
    def first(self) -> PhysicalFile:
        return self.parts[0]


def merge_paths(found: Iterable[FoundFile]) -> list[PhysicalFile]:
    """Group paths by resolved identity; each group's paths ordered by source, refs, path."""
    groups: dict[str, list[FoundFile]] = defaultdict(list)
    for item in found:
        groups[item.key].append(item)
    files = [
        PhysicalFile(key, tuple(sorted(items, key=_path_order))) for key, items in groups.items()
    ]
    return sorted(files, key=lambda f: f.primary.path)


def _path_order(found: FoundFile) -> tuple[int, int, str]:
    return (_SOURCE_RANK[found.source], 0 if found.hf_refs else 1, found.path)


def build_units(files: Iterable[PhysicalFile], headers: Mapping[str, HeaderOrError]) -> list[Unit]:
    """Group physical files into units. ``headers`` maps a file key to its header or read error
    (files whose source already set ``error`` need no entry)."""
    projectors: list[PhysicalFile] = []
    singles: list[tuple[PhysicalFile, NameInfo]] = []
    splits: dict[tuple[str, str, int], dict[int, tuple[PhysicalFile, NameInfo]]] = defaultdict(dict)
    for file in files:
        info = name_info(file)
        header = headers.get(file.key)
        parsed = header if isinstance(header, GGUFHeader) else None
        if _is_projector(file, info, parsed):
            projectors.append(file)
            continue
        split = _split_slot(file, info, parsed)
        if split is None:
            singles.append((file, info))
        else:
            group, part = split
            splits[group].setdefault(part, (file, info))
    units = [_single(file, info, headers) for file, info in singles]
    units += [_split_unit(group, parts, headers) for group, parts in splits.items()]
    paired = _pair_projectors(units, projectors)
    return sorted(paired, key=lambda u: u.first.primary.path)


def name_info(file: PhysicalFile) -> NameInfo:
    """What the file's name says; for an Ollama blob (``sha256-...``), what ``name:tag`` says."""
    ollama_name = file.fact("ollama_name")
    if file.primary.source == "ollama" and ollama_name is not None:
        return parse_filename(re.sub(r"[/:]", "-", ollama_name) + ".gguf")
    return parse_filename(file.primary.name)


def _is_projector(file: PhysicalFile, info: NameInfo, header: GGUFHeader | None) -> bool:
    if any(found.projector for found in file.found) or info.mmproj:
        return True
    return header is not None and header.architecture == "clip"


def _split_slot(
    file: PhysicalFile, info: NameInfo, header: GGUFHeader | None
) -> tuple[tuple[str, str, int], int] | None:
    """((folder, stem, total), part number from 1) for a split part, else None."""
    folder = str(Path(file.primary.path).parent)
    if info.split_total is not None and info.split_total > 1 and info.split_part is not None:
        return (folder, info.stem, info.split_total), info.split_part
    if header is not None and header.split_count is not None and header.split_count > 1:
        stem = _TRAILING_NUMBER.sub("", info.stem) or info.stem
        return (folder, stem, header.split_count), (header.split_no or 0) + 1
    return None


def _error_of(file: PhysicalFile, headers: Mapping[str, HeaderOrError]) -> str | None:
    if file.primary.error is not None:
        return file.primary.error
    header = headers.get(file.key)
    if header is None:
        return "not read"
    return header if isinstance(header, str) else None


def _header_of(file: PhysicalFile, headers: Mapping[str, HeaderOrError]) -> GGUFHeader | None:
    header = headers.get(file.key)
    return header if isinstance(header, GGUFHeader) else None


def _single(file: PhysicalFile, info: NameInfo, headers: Mapping[str, HeaderOrError]) -> Unit:
    header = _header_of(file, headers)
    return Unit((file,), info, header, (header,), error=_error_of(file, headers))


def _split_unit(
    group: tuple[str, str, int],
    parts: Mapping[int, tuple[PhysicalFile, NameInfo]],
    headers: Mapping[str, HeaderOrError],
) -> Unit:
    total = group[2]
    numbers = sorted(parts)
    files = tuple(parts[n][0] for n in numbers)
    missing = [n for n in range(1, total + 1) if n not in parts]
    problems: list[str] = []
    if missing:
        listed = ", ".join(str(n) for n in missing)
        problems.append(f"split model: part {listed} of {total} missing")
    for number in numbers:
        error = _error_of(parts[number][0], headers)
        if error is not None:
            problems.append(f"part {number}: {error}")
    first_file, first_info = parts[numbers[0]]
    header = _header_of(first_file, headers) if numbers[0] == 1 else None
    part_headers = tuple(_header_of(f, headers) for f in files)
    return Unit(files, first_info, header, part_headers, error="; ".join(problems) or None)


def _pair_projectors(units: list[Unit], projectors: list[PhysicalFile]) -> list[Unit]:
    """Attach projectors to models: the one the Ollama manifest names, else the best one in
    the model's folder. Projectors paired with nothing become units of their own."""
    by_path = {path: file for file in projectors for path in file.paths}
    by_folder: dict[str, list[PhysicalFile]] = defaultdict(list)
    for file in sorted(projectors, key=_projector_order):
        for folder in dict.fromkeys(str(Path(p).parent) for p in file.paths):
            by_folder[folder].append(file)
    used: set[str] = set()
    result: list[Unit] = []
    for unit in units:
        projector = _projector_for(unit.first, by_path, by_folder)
        if projector is not None:
            used.add(projector.key)
            unit = Unit(
                unit.parts,
                unit.name,
                unit.header,
                unit.part_headers,
                projector=projector,
                error=unit.error,
            )
        result.append(unit)
    for file in projectors:
        if file.key not in used:
            result.append(
                Unit(
                    (file,),
                    name_info(file),
                    None,
                    (None,),
                    error="a vision projector (mmproj) with no model beside it",
                    lone_projector=True,
                )
            )
    return result


def _projector_for(
    first: PhysicalFile,
    by_path: Mapping[str, PhysicalFile],
    by_folder: Mapping[str, list[PhysicalFile]],
) -> PhysicalFile | None:
    named = first.fact("ollama_projector")
    if named is not None:
        return by_path.get(named)
    for path in first.paths:
        candidates = by_folder.get(str(Path(path).parent))
        if candidates:
            return candidates[0]
    return None


def _projector_order(file: PhysicalFile) -> tuple[int, str]:
    quantization = parse_filename(file.primary.name).quantization or ""
    return (_PROJECTOR_RANK.get(quantization.upper(), len(_PROJECTOR_RANK)), file.primary.path)
