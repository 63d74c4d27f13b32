"""The runtime file: a running ``modelyard serve`` says where it listens.

``serve`` claims its data folder by writing ``<data_dir>/serve.json`` before it opens the
store, and releases it (removes the file) after it has closed the store:

    {"url": "http://127.0.0.1:9000", "pid": 4242, "create_time": 1732360000.12,
     "started_at": "2024-11-23T10:26:40+00:00", "version": "0.1.0"}

The CLI reads it to find the server (``modelyard.cli.manager.locate``). A file is *live* while
its pid is a running process with the same create time; one whose process is gone, or whose
pid now names another process (the create time differs: pids are reused), is *stale*: the
CLI ignores it with a one-line note and the next ``serve`` replaces it. A crash or ``kill -9``
leaves a stale file behind; nothing else needs to clean it up.

Written atomically (a temporary file renamed into place), so a reader sees the old file or
the new one, never half of one. No httpx here: ``serve`` imports this module.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from modelyard import __version__
from modelyard.errors import ManagerRunning

# psutil derives a create time from the boot time and clock ticks: the same process reads
# the same value each time; another process with the pid differs by far more than this.
_SAME_PROCESS_S = 0.05


@dataclass(frozen=True)
class Runtime:
    """What a running server wrote about itself."""

    url: str
    pid: int
    create_time: float
    started_at: str
    version: str

    @classmethod
    def for_this_process(cls, url: str) -> Runtime:
        return cls(
            url=url,
            pid=os.getpid(),
            create_time=psutil.Process().create_time(),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            version=__version__,
        )


@dataclass(frozen=True)
class Stale:
    """A runtime file that names no running server, and why."""

    path: Path
    reason: str

    def note(self) -> str:
        return f"ignoring the stale runtime file {self.path} ({self.reason})"


def look(path: Path) -> Runtime | Stale | None:
    """The live server the file at ``path`` names, a ``Stale`` saying why it names none, or
    None when there is no file. Never raises for a bad file: that is stale too."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        return Stale(path, f"cannot be read: {exc.strerror or exc}")
    runtime = _parse(text)
    if runtime is None:
        return Stale(path, "not a runtime file modelyard wrote")
    why = _not_running(runtime)
    return runtime if why is None else Stale(path, why)


def claim(path: Path, url: str) -> tuple[Runtime, Stale | None]:
    """Write this process's runtime file at ``path``; returns it and the stale file it
    replaced, if any. Raises ManagerRunning when the file names another live server."""
    found = look(path)
    if isinstance(found, Runtime) and found.pid != os.getpid():
        raise ManagerRunning(_taken(path, found))
    mine = Runtime.for_this_process(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{mine.pid}.tmp")
    try:
        partial.write_text(json.dumps(asdict(mine)) + "\n", encoding="utf-8")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    # Two servers starting at once over one folder both got here: the last rename won.
    after = look(path)
    if isinstance(after, Runtime) and after.pid != mine.pid:
        raise ManagerRunning(_taken(path, after))
    return mine, found if isinstance(found, Stale) else None


def release(path: Path, mine: Runtime) -> None:
    """Remove the runtime file if it is still ``mine`` (never another server's)."""
    try:
        current = _parse(path.read_text(encoding="utf-8"))
    except OSError:
        return
    if current is not None and (current.pid, current.create_time) == (mine.pid, mine.create_time):
        path.unlink(missing_ok=True)


def _taken(path: Path, other: Runtime) -> str:
    return (
        f"a modelyard serve (pid {other.pid}, started {other.started_at}) already serves this "
        f"data folder at {other.url}; stop it first, or give this one another --data-dir "
        f"(runtime file {path})"
    )


def _parse(text: str) -> Runtime | None:
    try:
        data: Any = json.loads(text)
        runtime = Runtime(
            url=str(data["url"]),
            pid=int(data["pid"]),
            create_time=float(data["create_time"]),
            started_at=str(data.get("started_at", "")),
            version=str(data.get("version", "")),
        )
    except (ValueError, KeyError, TypeError):
        return None
    return runtime if runtime.pid > 0 else None


def _not_running(runtime: Runtime) -> str | None:
    """None when the pid is the process that wrote the file, else why it is not."""
    try:
        process = psutil.Process(runtime.pid)
        zombie = process.status() == psutil.STATUS_ZOMBIE
        create_time = process.create_time()
    except psutil.NoSuchProcess:
        return f"pid {runtime.pid} is gone"
    except psutil.AccessDenied:  # someone else's process: it may be the server; assume so
        return None
    if zombie:
        return f"pid {runtime.pid} is gone"
    if abs(create_time - runtime.create_time) > _SAME_PROCESS_S:
        return f"pid {runtime.pid} is another process now"
    return None
