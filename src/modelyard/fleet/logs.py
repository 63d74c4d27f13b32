"""One instance's log: a rotating file on disk and the last lines in memory.

The file is ``<logs_dir>/<instance id>.log`` (``:`` kept: Linux allows it). When it would grow
past ``max_bytes`` it is renamed to ``.log.1`` (older ones shift to ``.2``... up to
``backups``) and a new one is started. Lines written by modelyard itself start with
``[modelyard]``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path
from typing import IO

_CHUNK = 64 * 1024


def log_path(logs_dir: Path, instance_id: str) -> Path:
    """Where the log of ``instance_id`` lives (``/`` in an id would be a folder: replaced)."""
    return logs_dir / f"{instance_id.replace('/', '_')}.log"


class InstanceLog:
    """Append-only log with rotation. Used from the event loop's thread only."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int, tail_lines: int) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._backups = backups
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._file: IO[bytes] | None = None
        self._size = 0

    def _open(self) -> IO[bytes]:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
            self._size = self._file.tell()
        return self._file

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for index in range(self._backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))

    def write(self, line: str) -> None:
        """Append one line (without its newline) to the file and the in-memory tail."""
        self._tail.append(line)
        data = (line + "\n").encode("utf-8", errors="replace")
        handle = self._open()
        if self._size and self._size + len(data) > self._max_bytes:
            self._rotate()
            handle = self._open()
        handle.write(data)
        handle.flush()
        self._size += len(data)

    def note(self, text: str) -> None:
        """A line from modelyard itself (start, exit, stop), marked as such."""
        self.write(f"[modelyard] {text}")

    def tail(self, count: int | None = None) -> list[str]:
        """The last ``count`` lines kept in memory (all of them when None)."""
        lines = list(self._tail)
        return lines if count is None else lines[-count:]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    async def pump(self, stream: asyncio.StreamReader) -> None:
        """Copy ``stream`` into the log line by line until EOF. Overlong lines are split."""
        pending = b""
        while chunk := await stream.read(_CHUNK):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                self.write(raw.decode("utf-8", errors="replace").rstrip("\r"))
            if len(pending) > _CHUNK:
                self.write(pending.decode("utf-8", errors="replace"))
                pending = b""
        if pending:
            self.write(pending.decode("utf-8", errors="replace").rstrip("\r"))


def read_tail(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of a log file on disk (reads at most the last 1 MiB)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 1024 * 1024))
            data = handle.read()
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[-count:] if count else []
