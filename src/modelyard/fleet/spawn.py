"""Creating, signalling and recognising server processes.

Every server runs in its own session and process group (``start_new_session=True``), so one
signal to the group reaches whatever it forked. On Linux the child also asks the kernel for
SIGKILL when its parent dies (``PR_SET_PDEATHSIG``), so a ``kill -9`` of the manager leaves no
server behind. The kernel sends that signal when the *thread* that forked the child exits, so
spawn only from the event loop's thread (``asyncio.create_subprocess_exec`` does), never from a
worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Callable, Mapping

import psutil

_PR_SET_PDEATHSIG = 1
_CREATE_TIME_TOLERANCE_S = 0.05


def _parent_death_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` that sets PR_SET_PDEATHSIG to SIGKILL, or None off Linux.

    libc is resolved here, in the parent, so the child runs no loader code between fork and
    exec. If the parent died before the call took effect, the child exits at once: the
    signal would never come.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


async def spawn(
    argv: tuple[str, ...],
    env: Mapping[str, str],
    cwd: str | None,
) -> asyncio.subprocess.Process:
    """Start ``argv`` in a new session with stdout and stderr on one pipe.

    Raises OSError (FileNotFoundError, PermissionError...) when it cannot be run. Must be
    called from the event loop's thread (see the module docstring).
    """
    merged = {**os.environ, **env}
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=merged,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=_parent_death_preexec(),
        limit=1 << 20,
    )


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to a process group. False when no process is left in it."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def create_time(pid: int) -> float | None:
    """psutil's creation time of ``pid``, or None when it is gone (a zombie counts as gone)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def same_process(pid: int, created: float) -> bool:
    """True when ``pid`` is alive and is the process created at ``created``.

    Comparing the creation time tells a reused pid apart from the process we started.
    """
    now = create_time(pid)
    return now is not None and abs(now - created) <= _CREATE_TIME_TOLERANCE_S


def tree_rss(pid: int) -> int | None:
    """Resident memory of ``pid`` and all its descendants, in bytes; None when it is gone."""
    try:
        root = psutil.Process(pid)
        total = root.memory_info().rss
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
    except psutil.Error:
        return None
    return total


async def stop_leftover(pid: int, pgid: int, created: float, timeout_s: float) -> bool:
    """Stop a server recorded by an earlier run, if it is still the same process.

    SIGTERM to its group, SIGKILL after ``timeout_s``. Returns True if something was stopped.
    A pid now used by another process (different creation time) is left alone.
    """
    if not same_process(pid, created):
        return False
    signal_group(pgid, signal.SIGTERM)
    if not await _gone(pid, created, timeout_s):
        signal_group(pgid, signal.SIGKILL)
        await _gone(pid, created, timeout_s)
    return True


async def _gone(pid: int, created: float, limit_s: float) -> bool:
    """Poll until the process is gone (True) or ``limit_s`` passes (False)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        if not same_process(pid, created):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.02)
