"""The profiles folder: one YAML file per profile, written atomically.

Each file's version is the SHA-256 of its bytes (shown as an ETag): a writer that read
version V may ask that its write land only if the file is still at V, so two editors never
silently overwrite one another. Writes go to a unique temporary file in the same folder and
are renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from modelyard.errors import Conflict, ProfileNotFound, ValidationFailed
from modelyard.profiles.schema import NAME_PATTERN

_NAME = re.compile(NAME_PATTERN)
EXAMPLES = ("development", "production", "fast-only")


@dataclass(frozen=True)
class ProfileFile:
    """One file's raw content: its parsed YAML (``None`` if unreadable) and its version."""

    name: str
    path: Path
    data: Any
    version: str
    error: str | None = None


def check_name(name: str) -> str:
    """Raise ValidationFailed unless ``name`` is a valid profile name (also a safe file stem)."""
    if not _NAME.match(name):
        raise ValidationFailed(
            f"profile name '{name}': use 1-64 of a-z 0-9 . _ - starting with a letter or digit",
            param="name",
        )
    return name


def version_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


class ProfileFiles:
    """The folder. Safe to use from several threads of one process (one lock serialises
    writes); several processes writing the same file race only within one rename."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    def ensure_examples(self) -> list[str]:
        """On first use (the folder does not exist), copy the bundled examples into it.
        Returns the names copied; an existing folder is left alone, even if empty."""
        if self.folder.exists():
            return []
        self.folder.mkdir(parents=True, exist_ok=True)
        package = resources.files("modelyard.profiles") / "examples"
        for name in EXAMPLES:
            raw = (package / f"{name}.yaml").read_bytes()
            self._write_bytes(self.folder / f"{name}.yaml", raw)
        return list(EXAMPLES)

    def names(self) -> list[str]:
        """Every profile name in the folder, sorted."""
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.yaml") if _NAME.match(p.stem))

    def read(self, name: str) -> ProfileFile:
        """The file's content. Raises ProfileNotFound; a file that is not valid YAML is
        returned with ``error`` set and ``data`` None."""
        path = self.folder / f"{check_name(name)}.yaml"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            known = ", ".join(self.names()) or "none"
            raise ProfileNotFound(
                f"no profile '{name}' (profiles: {known})", param="name"
            ) from None
        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            return ProfileFile(name, path, None, version_of(raw), f"not valid YAML{where}")
        return ProfileFile(name, path, data, version_of(raw))

    def write(
        self,
        name: str,
        data: dict[str, Any],
        *,
        expected_version: str | None = None,
        create: bool = False,
        must_exist: bool = False,
    ) -> tuple[str | None, str]:
        """Write ``data`` as ``name``'s file and return ``(old version or None, new version)``.

        ``create``: refuse (Conflict) if the file exists; ``must_exist``: refuse
        (ProfileNotFound) if it does not. ``expected_version``: refuse (Conflict) unless the
        file is at that version (ProfileNotFound if it is gone).
        """
        path = self.folder / f"{check_name(name)}.yaml"
        raw = yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode("utf-8")
        with self._lock:
            old = _current_version(path)
            if create and old is not None:
                raise Conflict(f"profile '{name}' already exists", param="name")
            if must_exist and old is None:
                raise ProfileNotFound(f"no profile '{name}'", param="name")
            if expected_version is not None and old != expected_version:
                if old is None:
                    raise ProfileNotFound(f"no profile '{name}'", param="name")
                raise Conflict(
                    f"profile '{name}' changed since version {expected_version} "
                    f"(now {old}); read it again and retry",
                    param="If-Match",
                )
            self.folder.mkdir(parents=True, exist_ok=True)
            self._write_bytes(path, raw)
        return old, version_of(raw)

    def delete(self, name: str, *, expected_version: str | None = None) -> str:
        """Remove the file and return the version removed. Raises ProfileNotFound, Conflict."""
        path = self.folder / f"{check_name(name)}.yaml"
        with self._lock:
            old = _current_version(path)
            if old is None:
                raise ProfileNotFound(f"no profile '{name}'", param="name")
            if expected_version is not None and old != expected_version:
                raise Conflict(
                    f"profile '{name}' changed since version {expected_version}",
                    param="If-Match",
                )
            path.unlink()
        return old

    @staticmethod
    def _write_bytes(path: Path, raw: bytes) -> None:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(raw)
                handle.flush()
                os.fsync(handle.fileno())
            Path(temp).replace(path)
        finally:
            Path(temp).unlink(missing_ok=True)


def _current_version(path: Path) -> str | None:
    try:
        return version_of(path.read_bytes())
    except FileNotFoundError:
        return None
