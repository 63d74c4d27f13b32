"""Creating, signalling and recognising server processes.

Every server runs in its own session and process group (``start_new_session=True``), so one
signal to the group reaches whatever it forked. On Linux the child also asks the kernel for
SIGKILL when its parent dies (``PR_SET_PDEATHSIG``), so a ``kill -9`` of the manager leaves no
direct child behind. The kernel sends that signal when the *thread* that forked the child
exits, so spawn only from the event loop's thread (``loop.subprocess_exec`` does), never from
a worker thread.

The parent-death signal reaches only the direct child: a server that forks (a ``command``
line wrapped in ``sh -c``, vLLM's workers) leaves its children running, reparented, after a
crash of the manager, still holding the instance's port. So every spawn also carries a mark, a
random token in its environment (``environment.MARK``), and the fleet records the leader's
pid, group, creation time and mark. The next start finds, and stops, every live process
created no earlier than that leader which is either in its process group or session, or
carries its mark in its environment (``leftovers``): the first catches children that scrub
their environment, the second children that call ``setsid``. Only a process that does both
escapes (a cgroup would be needed). Linux-only: another process's group, session and
environment are read from ``/proc`` (through psutil).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import signal
import sys
from collections.abc import Callable, Collection, Mapping

import psutil

from modelyard.fleet.environment import MARK, child_environment

_PR_SET_PDEATHSIG = 1
_CREATE_TIME_TOLERANCE_S = 0.05
_POLL_S = 0.02
_SWEEPS = 3


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


def new_mark(instance_id: str) -> str:
    """A fresh spawn mark: the instance's id (for a person reading ``/proc``) and a token."""
    return f"{instance_id}/{secrets.token_hex(8)}"


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """asyncio's stream protocol that also tells when the process exits."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


class Child(asyncio.subprocess.Process):
    """A spawned server (or stop command): asyncio's ``Process`` plus ``exited``.

    ``Process.wait()`` returns only once the process has exited *and* its pipes are closed,
    and a child it forked holds the output pipe too: a stop of ``sh -c 'server & wait'``
    waited for every worker, and forever for one the signals could not reach. ``exited``
    waits for the process alone.
    """

    def __init__(
        self,
        transport: asyncio.SubprocessTransport,
        protocol: _Protocol,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(transport, protocol, loop)
        self._exited = protocol.exited

    async def exited(self) -> int:
        """Blocks until the process exits (not its children); returns its exit code."""
        await asyncio.shield(self._exited)
        code = self.returncode
        assert code is not None  # set before the protocol hears of the exit
        return code


async def spawn(
    argv: tuple[str, ...],
    env: Mapping[str, str],
    cwd: str | None,
    *,
    pass_env: Collection[str] = (),
    mark: str | None = None,
) -> Child:
    """Start ``argv`` in a new session with stdout and stderr on one pipe, in the scrubbed
    environment ``environment.child_environment`` builds (``env`` on top, ``mark`` last).

    Raises OSError (FileNotFoundError, PermissionError...) when it cannot be run. Must be
    called from the event loop's thread (see the module docstring).
    """
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.subprocess_exec(
        lambda: _Protocol(1 << 20, loop),
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=child_environment(os.environ, env, pass_env, mark),
        cwd=cwd,
        start_new_session=True,
        preexec_fn=_parent_death_preexec(),
    )
    return Child(transport, protocol, loop)


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


def leftovers(pgid: int, created: float, mark: str | None) -> list[psutil.Process]:
    """Live processes started for a server recorded by an earlier run (blocking: reads
    ``/proc``; call it in a thread). The server's leader had pid ``pgid`` (its own group and
    session) and was created at ``created``; ``mark`` is its spawn mark (None for rows an
    older version recorded).

    Only processes created no earlier than the leader count, and never this process. Of
    those, a member of the group or session ``pgid`` counts while the leader is alive and the
    same process, or gone: the kernel does not hand out a pid that is still some group's or
    session's id, so while a member lives the group is ours. Once the leader's pid belongs to
    another process, the group is another's. A process carrying ``mark`` counts wherever it
    is. Nothing from before the last boot can be running: such a record finds nothing.
    """
    if created < psutil.boot_time() - _CREATE_TIME_TOLERANCE_S:
        return []
    group_ours = create_time(pgid) is None or same_process(pgid, created)

    def ours(process: psutil.Process) -> bool:
        if group_ours and pgid in (os.getpgid(process.pid), os.getsid(process.pid)):
            return True
        return mark is not None and _carries(process, mark)

    return _created_since(created, ours)


def marked(mark: str, created: float) -> list[psutil.Process]:
    """Live processes carrying ``mark`` created no earlier than ``created`` (blocking)."""
    return _created_since(created, lambda process: _carries(process, mark))


def _created_since(created: float, test: Callable[[psutil.Process], bool]) -> list[psutil.Process]:
    """Live processes but this one, created no earlier than ``created``, that pass ``test``."""
    own = os.getpid()
    found = []
    for process in psutil.process_iter():
        try:
            if process.pid == own or process.create_time() < created - _CREATE_TIME_TOLERANCE_S:
                continue
            if process.status() != psutil.STATUS_ZOMBIE and test(process):
                found.append(process)
        except (psutil.Error, OSError):
            continue  # gone meanwhile, or another user's
    return found


def _carries(process: psutil.Process, mark: str) -> bool:
    environ: dict[str, str] = process.environ()
    return environ.get(MARK) == mark


async def stop_leftover(pgid: int, created: float, mark: str | None, timeout_s: float) -> int:
    """Stop what a server recorded by an earlier run left running: its leader (pid
    ``pgid``), if it is still the same process, and every process ``leftovers`` finds.
    SIGTERM, SIGKILL after ``timeout_s``; then again, with SIGKILL at once, for anything
    forked meanwhile (a few rounds). Returns how many processes were stopped. A pid now
    used by another process (different creation time) is left alone."""
    stopped = 0
    for sweep in range(_SWEEPS):
        found = await asyncio.to_thread(leftovers, pgid, created, mark)
        if not found:
            break
        stopped += len(found)
        await stop_processes(found, timeout_s if sweep == 0 else 0.0)
    return stopped


async def stop_marked(mark: str, created: float, timeout_s: float) -> int:
    """Stop the processes carrying ``mark`` (children that left the server's session), as
    ``stop_leftover`` does. Returns how many were stopped."""
    stopped = 0
    for sweep in range(_SWEEPS):
        found = await asyncio.to_thread(marked, mark, created)
        if not found:
            break
        stopped += len(found)
        await stop_processes(found, timeout_s if sweep == 0 else 0.0)
    return stopped


async def stop_processes(processes: list[psutil.Process], timeout_s: float) -> None:
    """SIGTERM each process (none with ``timeout_s`` 0), SIGKILL those still running after
    ``timeout_s``; returns once all are gone or ``timeout_s`` more has passed. psutil
    checks each process's creation time before signalling, so a reused pid is never hit."""
    if timeout_s > 0:
        _signal_each(processes, signal.SIGTERM)
        if await _all_gone(processes, timeout_s):
            return
    _signal_each(processes, signal.SIGKILL)
    await _all_gone(processes, max(timeout_s, 1.0))


def _signal_each(processes: list[psutil.Process], sig: signal.Signals) -> None:
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def _all_gone(processes: list[psutil.Process], limit_s: float) -> bool:
    """Poll until no process of ``processes`` runs (True) or ``limit_s`` passes (False)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while any(_running(p) for p in processes):
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(_POLL_S)
    return True
