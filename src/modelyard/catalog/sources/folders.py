"""Folders the user names: walked recursively for ``*.gguf`` files.

Covers LM Studio's ``publisher/model/file.gguf`` layout and any hand-made tree. Symlinks to
files and to folders are followed; a folder reached twice (a symlink loop, or two links to one
folder) is walked once. Hidden entries and partial downloads are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from modelyard.catalog.sources import FoundFile, SourceScan, found_file, is_gguf_name

_TEMPLATE = FoundFile(path="", source="folder")


def scan_folders(roots: Iterable[Path]) -> SourceScan:
    """Walk each root (a folder, or a single ``.gguf`` file) and return the GGUF files found.

    A root that does not exist or cannot be listed is a warning. Never raises for one entry.
    """
    files: list[FoundFile] = []
    warnings: list[str] = []
    seen_dirs: set[tuple[int, int]] = set()
    for root in roots:
        path = root.expanduser().absolute()
        if path.is_dir():
            _walk(str(path), seen_dirs, files, warnings)
        elif path.is_file():
            if path.name.lower().endswith(".gguf"):
                files.append(found_file(str(path), _TEMPLATE))
            else:
                warnings.append(f"{path}: not a .gguf file, skipped")
        else:
            warnings.append(f"{path}: no such folder")
    return SourceScan(tuple(files), tuple(warnings))


def _walk(
    root: str, seen_dirs: set[tuple[int, int]], files: list[FoundFile], warnings: list[str]
) -> None:
    """Depth-first walk with an explicit stack; ``seen_dirs`` holds resolved (dev, ino) pairs."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = Path(folder).stat()
        except OSError as exc:
            warnings.append(f"{folder}: cannot read folder: {exc.strerror}")
            continue
        identity = (st.st_dev, st.st_ino)
        if identity in seen_dirs:
            if Path(folder).is_symlink():
                warnings.append(f"{folder}: symlink to a folder already scanned (a loop?), skipped")
            continue
        seen_dirs.add(identity)
        try:
            with os.scandir(folder) as entries:
                listed = sorted(entries, key=lambda entry: entry.name)
        except OSError as exc:
            warnings.append(f"{folder}: cannot list folder: {exc.strerror}")
            continue
        subfolders: list[str] = []
        for entry in listed:
            if entry.name.startswith("."):
                continue
            if _is_dir(entry):
                subfolders.append(entry.path)
            elif is_gguf_name(entry.name):
                files.append(found_file(entry.path, _TEMPLATE))
        stack.extend(reversed(subfolders))


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False
