"""The JSONL request log: one line per request, rotated by size like ``RotatingFileHandler``.

``requests.jsonl`` grows until the next batch would pass ``max_bytes``; then it becomes
``requests.jsonl.1`` (older ones shift to ``.2``...; beyond ``backups`` they are deleted).
With ``backups=0`` the file is truncated instead. Written from one thread at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class RequestLog:
    """Appends batches of JSON lines to ``path``, rotating by size. Blocks on disk I/O."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups

    def write(self, entries: Iterable[dict[str, Any]]) -> None:
        """Append one line per entry. Raises OSError if the folder cannot be written."""
        data = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries).encode()
        if not data:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        size = self.path.stat().st_size if self.path.exists() else 0
        if size and size + len(data) > self.max_bytes:
            self._rotate()
        with self.path.open("ab") as handle:
            handle.write(data)

    def _rotate(self) -> None:
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for n in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))
