"""Store writes the fleet must neither lose nor stop for: retried until the store takes them.

The fleet keeps its running state in memory and writes some of it through to the store: each
server's ``processes`` row (to find leftovers after a crash) and each instance's desired state
(to bring back what was running). Both are idempotent and only the latest write per key
matters. When the store refuses one (``StoreError``: read-only, full or failing disk), it is
logged once and kept; one background task tries the kept writes again every ``retry_s``, a
newer write for a key replacing the older, until they land. Meanwhile the processes are
controlled from memory as usual. Before this, a refused write raised inside a process's owner
task and ended it: the instance stayed ``ready`` with no pid, and every later start or stop
answered "instance ... is closed", even once the store was writable again.

All writes go through one lock, so two writes for one key land in the order they were made.
Methods are called from the event loop; the writes themselves run in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from modelyard.errors import StoreError

logger = logging.getLogger(__name__)

RETRY_S = 1.0


@dataclass(frozen=True)
class _Write:
    what: str
    run: Callable[[], None]


class PendingWrites:
    """Writes through to the store, keeping and retrying the ones it refuses."""

    def __init__(self, retry_s: float = RETRY_S) -> None:
        self._retry_s = retry_s
        self._pending: dict[str, _Write] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> list[str]:
        """What is waiting for the store, oldest first (``what`` of each kept write)."""
        return [write.what for write in self._pending.values()]

    async def write(self, key: str, what: str, run: Callable[[], None]) -> str | None:
        """Run ``run`` (a store write, in a worker thread) now. Returns None when it landed,
        else why the store refused it: then it is kept, replacing any older write for
        ``key``, and tried again every ``retry_s``. Never raises StoreError; other errors
        (bugs) are raised and nothing is kept."""
        async with self._lock:
            self._pending.pop(key, None)  # this write supersedes it
            write = _Write(what, run)
            try:
                await asyncio.to_thread(run)
            except StoreError as exc:
                logger.warning(
                    "%s: %s; kept in memory, retried every %gs", what, exc, self._retry_s
                )
                self._pending[key] = write
                self._start_retrying()
                return exc.message
            return None

    def discard(self, key: str) -> None:
        """Forget the kept write for ``key`` (what it wrote is gone: the instance was deleted)."""
        self._pending.pop(key, None)

    async def aclose(self) -> None:
        """Stop retrying after one last try; what still fails is logged as lost."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._retry()
        for what in self.pending:
            logger.error("%s: lost, the store could not be written before shutdown", what)
        self._pending.clear()

    def _start_retrying(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._retry_until_written(), name="fleet-store-retry"
            )

    async def _retry_until_written(self) -> None:
        while self._pending:
            await asyncio.sleep(self._retry_s)
            await self._retry()

    async def _retry(self) -> None:
        async with self._lock:
            for key, write in list(self._pending.items()):
                try:
                    await asyncio.to_thread(write.run)
                except StoreError:
                    continue  # logged when it was first refused
                except Exception:  # a bug in one write must not keep the others back
                    logger.exception("%s: failed; dropped", write.what)
                    del self._pending[key]
                    continue
                del self._pending[key]
                logger.warning("%s: written now that the store can be written", write.what)
