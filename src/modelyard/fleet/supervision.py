"""Supervision: each instance's ``ManagedProcess``, and the start decisions in front of it.

``Supervisor`` holds one ``ManagedProcess`` per instance while the fleet is started, and is
the only code that posts starts and stops to them. A start (``ensure``) is decided under the
instance's own lock: plan the command (moving to a free port when another process took the
instance's), admit its memory (``MemoryBudget.admit``, evicting idle instances through
``evict``), then post the start to the process's owner task and wait outside the lock, so any
number of concurrent callers cause one start. Failures before any process ran (engine, memory,
port) are kept as the instance's error until the next attempt.

The process hooks keep the rest in step: a stop releases the instance's memory, a spawn is
recorded in the store (to find leftovers after a crash) and an exit forgotten there, a ready
server's reported buffer sizes go to the memory ledger, and every state change is told to
``on_state``. The process rows go through ``PendingWrites``: when the store refuses one it is
logged, noted in the instance's log and retried until it lands, while the process goes on
being supervised from memory.

Sleep (vLLM sleep mode): ``sleep`` puts a ready instance to sleep instead of stopping it, at
level 1 when system RAM has room for its weights (they are then budgeted in RAM) and level 2
otherwise (nothing budgeted); ``ensure`` on a sleeping instance admits its GPU memory again and
wakes it. Plans sharing a ``start_group`` (vLLM instances on one GPU) start one after
another: the group's lock is held from the start being posted until it is ready or failed.
While a plan with a ``metrics_path`` is ready, its answer is scraped every
``wedge_check_interval_s`` through the engine's ``parse_metrics`` (``metrics``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from modelyard.engines.base import LaunchPlan, MemoryEstimate
from modelyard.errors import FleetError, ModelyardError
from modelyard.fleet import spawn
from modelyard.fleet.budget import MemoryBudget
from modelyard.fleet.configs import InstanceConfigs
from modelyard.fleet.leases import Leases
from modelyard.fleet.logs import InstanceLog, log_path
from modelyard.fleet.memory import MemoryLedger
from modelyard.fleet.pending import PendingWrites
from modelyard.fleet.ports import port_is_free
from modelyard.fleet.process import ManagedProcess, ProcessStatus, State, auth_header
from modelyard.fleet.specs import Specs
from modelyard.routing.eviction import RunningUse
from modelyard.settings import Settings
from modelyard.store.instances import InstanceRecords, ProcessRow
from modelyard.upstream import Transport

logger = logging.getLogger(__name__)

StateListener = Callable[[str, ProcessStatus], None]

_HOLDING = (State.STARTING, State.READY, State.STOPPING)
_STOPPED = ProcessStatus()


@dataclass(eq=False)
class _Supervised:
    process: ManagedProcess
    plan: LaunchPlan | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class _Hooks:
    """What one process tells the supervisor (see ``ProcessHooks``)."""

    def __init__(self, supervisor: Supervisor, ident: str) -> None:
        self._supervisor = supervisor
        self._ident = ident

    def changed(self, status: ProcessStatus) -> None:
        self._supervisor._changed(self._ident, status)

    async def spawned(self, status: ProcessStatus) -> None:
        await self._supervisor._record_process(self._ident, status)

    async def exited(self) -> None:
        await self._supervisor._forget_process(self._ident)


@dataclass(frozen=True)
class Parts:
    """What the supervisor works with, built by the fleet."""

    settings: Settings
    configs: InstanceConfigs
    records: InstanceRecords
    specs: Specs
    budget: MemoryBudget
    leases: Leases
    ledger: MemoryLedger | None
    writes: PendingWrites


class Supervisor:
    """Every instance's process while started. Methods are called from the event loop."""

    def __init__(self, parts: Parts, transport: Transport, on_state: StateListener) -> None:
        self._parts = parts
        self._transport = transport
        self._on_state = on_state
        self._supervised: dict[str, _Supervised] = {}
        self._errors: dict[str, str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._groups: dict[str, asyncio.Lock] = {}
        self._metrics: dict[str, dict[str, float]] = {}
        self._scraping: set[str] = set()

    # -- reading ----------------------------------------------------------------------------

    def status(self, ident: str) -> ProcessStatus:
        supervised = self._supervised.get(ident)
        return supervised.process.status() if supervised is not None else _STOPPED

    def error(self, ident: str) -> str | None:
        """A failure before any process ran (engine, memory, port), until the next attempt."""
        return self._errors.get(ident)

    def plan(self, ident: str) -> LaunchPlan | None:
        """The plan of the instance's current or last start; None before any."""
        supervised = self._supervised.get(ident)
        return supervised.plan if supervised is not None else None

    def metrics(self, ident: str) -> dict[str, float] | None:
        """The last figures scraped from its ``metrics_path`` while ready (vLLM's running,
        waiting and kv_cache_usage; Ollama's size and size_vram); None: none yet."""
        return self._metrics.get(ident)

    def log(self, ident: str) -> InstanceLog | None:
        supervised = self._supervised.get(ident)
        return supervised.process.log if supervised is not None else None

    def running(self, exclude: str) -> list[RunningUse]:
        """Every other instance holding memory: admitted, or with a live process."""
        budget, leases, configs = self._parts.budget, self._parts.leases, self._parts.configs
        uses = []
        for ident, supervised in self._supervised.items():
            record = configs.find(ident)
            if ident == exclude or record is None:
                continue
            if budget.reserved(ident) or supervised.process.status().state in _HOLDING:
                estimate = budget.estimate(ident)
                uses.append(
                    RunningUse(
                        ident,
                        estimate.total if estimate else 0,
                        estimate.device if estimate else None,
                        pinned=record.config.pinned,
                        in_flight=leases.in_flight(ident),
                        last_used=leases.last_used(ident) or 0.0,
                    )
                )
        return uses

    # -- acting -----------------------------------------------------------------------------

    def attach(self, ident: str) -> ManagedProcess:
        """The instance's process (made on first use)."""
        supervised = self._supervised.get(ident)
        if supervised is None:
            fleet = self._parts.settings.fleet
            log = InstanceLog(
                log_path(self._parts.settings.logs_dir, ident),
                max_bytes=fleet.log_max_bytes,
                backups=fleet.log_backups,
                tail_lines=fleet.log_tail_lines,
            )
            process = ManagedProcess(ident, fleet, log, self._transport, _Hooks(self, ident))
            supervised = self._supervised[ident] = _Supervised(process)
        return supervised.process

    async def ensure(self, ident: str) -> ProcessStatus:
        """Start ``ident`` unless it is serving and block until it is (see the module
        docstring). Stopping: waits for the stop, then starts again. Raises StartFailed,
        InsufficientMemory, EngineError, NoFreePort, ModelNotFound, InstanceNotFound."""
        process = self.attach(ident)
        supervised = self._supervised[ident]
        group: asyncio.Lock | None = None
        async with supervised.lock:
            state = process.status().state
            if state == State.READY:
                return process.status()
            try:
                if state in (State.STOPPED, State.ERROR) or supervised.plan is None:
                    stopped = state in (State.STOPPED, State.ERROR)
                    supervised.plan = await self._plan(ident, check_port=stopped)
                if state == State.SLEEPING:  # its RAM share (level 1) becomes GPU memory
                    self._parts.budget.release(ident)
                if state not in (State.STARTING, State.READY):
                    await self._admit(ident)
            except ModelyardError as exc:
                self._errors[ident] = exc.message
                self._on_state(ident, ProcessStatus(State.ERROR, exc.message))
                raise
            self._errors.pop(ident, None)
            name = supervised.plan.start_group
            if name is not None and state in (State.STOPPED, State.ERROR):
                group = self._groups.setdefault(name, asyncio.Lock())
                await group.acquire()
            reply = process.post_start(supervised.plan)  # posted in order, under the lock
        try:
            return await process.wait(reply)
        finally:
            if group is not None:
                group.release()

    async def sleep(self, ident: str, only_if: Callable[[], bool] | None = None) -> ProcessStatus:
        """Put a ready instance with a sleep plan to sleep (see the module docstring); the
        status says whether it sleeps. Blocks until its owner answered."""
        supervised = self._supervised.get(ident)
        if supervised is None or supervised.plan is None or supervised.plan.sleep is None:
            return self.status(ident)
        host_bytes = supervised.plan.sleep.host_bytes
        inventory = await self._parts.budget.inventory()
        level = 1 if host_bytes <= inventory.ram_available_bytes - inventory.reserve_bytes else 2
        status = await supervised.process.sleep(level, only_if)
        if status.state == State.SLEEPING:
            budget, record = self._parts.budget, self._parts.configs.find(ident)
            budget.release(ident)
            if level == 1:  # the weights now sit in system RAM: budget them there
                pinned = bool(record and record.config.pinned)
                in_ram = MemoryEstimate(host_bytes, 0, 0, device=None)
                budget.set_estimate(ident, in_ram, pinned)
                try:
                    await budget.admit(ident, in_ram, self.running, self._evict)
                except ModelyardError as exc:
                    supervised.process.log.note(f"its weights in RAM are not budgeted: {exc}")
        return status

    async def stop(self, ident: str, only_if: Callable[[], bool] | None = None) -> ProcessStatus:
        """Stop and block until stopped (``only_if`` checked by the owner when it takes the
        stop). A start under way is abandoned: its waiters get StartFailed."""
        self._errors.pop(ident, None)
        supervised = self._supervised.get(ident)
        if supervised is None:
            return _STOPPED
        return await supervised.process.stop(only_if)

    async def restart(self, ident: str) -> ProcessStatus:
        """Stop then start with the current settings; blocks until ready."""
        process = self.attach(ident)
        if process.status().state in (State.STOPPED, State.ERROR):
            return await self.ensure(ident)
        plan = await self._plan(ident, check_port=False)
        self._supervised[ident].plan = plan
        return await process.restart(plan)

    async def close(self, ident: str) -> None:
        """Stop the process for good and forget it (the instance is being deleted)."""
        supervised = self._supervised.pop(ident, None)
        self._errors.pop(ident, None)
        if supervised is not None:
            await supervised.process.aclose()

    async def aclose(self) -> None:
        """Stop every process, concurrently, and the background work."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        processes = [s.process for s in self._supervised.values()]
        self._supervised.clear()
        await asyncio.gather(*(p.aclose() for p in processes), return_exceptions=True)

    async def stop_leftovers(self) -> None:
        """Stop what servers a previous run recorded left running: the leader (same pid and
        creation time only) and everything it started, forked children and children that
        left its session included (``spawn.leftovers``). Returns once they are gone, so the
        instances' ports are free again."""
        records = self._parts.records
        rows = await asyncio.to_thread(records.processes)
        timeout = self._parts.settings.fleet.stop_timeout_s
        stopped = await asyncio.gather(
            *(spawn.stop_leftover(r.pgid, r.create_time, r.mark, timeout) for r in rows)
        )
        for row, count in zip(rows, stopped, strict=True):
            if count:
                logger.warning(
                    "stopped %d leftover process(es) of %s (leader pid %s)",
                    count,
                    row.instance_id,
                    row.pid,
                )
            # One row at a time, under the instance's key: kept and retried if the store
            # refuses it, a later spawn's row supersedes it (a retried "delete all" would not).
            await self._forget_process(row.instance_id)

    # -- internals --------------------------------------------------------------------------

    async def _plan(self, ident: str, *, check_port: bool) -> LaunchPlan:
        """The command for the next start. With ``check_port``, a port another process took
        since is replaced by a free one (and stored). Raises EngineError, NoFreePort..."""
        configs = self._parts.configs
        record = configs.get(ident)
        if check_port and not port_is_free(record.port):
            old = record.port
            record = await configs.move_port(ident, held=())
            log = self.log(ident)
            if log is not None:
                log.note(f"port {old} is taken; moved to {record.port}")
        engine, spec = self._parts.specs.of(record)
        return engine.plan(spec)

    async def _admit(self, ident: str) -> None:
        budget = self._parts.budget
        if not budget.enforced or budget.reserved(ident):
            return
        record = self._parts.configs.get(ident)
        engine, spec = self._parts.specs.of(record)
        estimate = engine.estimate(spec)
        budget.set_estimate(ident, estimate, record.config.pinned)
        await budget.admit(ident, estimate, self.running, self._evict)

    async def _evict(self, ident: str) -> None:
        """Stop an idle unpinned instance; checked again by its owner when it takes the stop."""
        configs, leases = self._parts.configs, self._parts.leases

        def still_idle() -> bool:
            record = configs.find(ident)
            return leases.in_flight(ident) == 0 and not (record and record.config.pinned)

        status = await self.stop(ident, only_if=still_idle)
        if status.state == State.STOPPED:
            log = self.log(ident)
            if log is not None:
                log.note("stopped to free memory for another instance")
            await configs.set_desired(ident, "stopped", actor="fleet")

    def _changed(self, ident: str, status: ProcessStatus) -> None:
        if status.state in (State.STOPPED, State.ERROR):
            self._parts.budget.release(ident)
            self._metrics.pop(ident, None)
        plan = self.plan(ident)
        scrape = status.state == State.READY and plan is not None and plan.metrics_path
        if scrape and plan is not None and ident not in self._scraping:
            self._scraping.add(ident)
            self._background(self._scrape(ident, plan))
        log = self.log(ident)
        if status.state == State.READY and self._parts.ledger is not None and log is not None:
            self._background(self._measure(ident, log.tail()))
        self._on_state(ident, status)

    async def _scrape(self, ident: str, plan: LaunchPlan) -> None:
        """Read the plan's metrics while the instance is ready or sleeping (see ``metrics``).
        A failed read keeps the last figures; the loop ends when the instance goes down."""
        interval = self._parts.settings.fleet.wedge_check_interval_s
        url = plan.base_url + (plan.metrics_path or "")
        try:
            while self.status(ident).state in (State.READY, State.SLEEPING):
                record = self._parts.configs.find(ident)
                try:
                    status, body = await self._transport.call(
                        "GET", url, b"", interval, auth_header(plan)
                    )
                    if record is not None and status == 200:
                        engine, _ = self._parts.specs.of(record)
                        figures = engine.parse_metrics(plan, body)
                        if figures is not None:
                            self._metrics[ident] = figures
                except ModelyardError:
                    pass
                await asyncio.sleep(interval)
        finally:
            self._scraping.discard(ident)

    async def _measure(self, ident: str, lines: list[str]) -> None:
        """Keep the buffer sizes the server reported, to correct later estimates."""
        ledger = self._parts.ledger
        record = self._parts.configs.find(ident)
        if ledger is None or record is None:
            return
        try:
            engine, spec = self._parts.specs.of(record)
            buffers = engine.parse_memory_log(lines)
            key = engine.measurement_key(spec)
        except ModelyardError:
            return
        if buffers and key is not None:
            try:
                await asyncio.to_thread(ledger.record, record.model_id, key, buffers)
            except ModelyardError:
                logger.exception("could not keep the memory measured for %s", ident)

    async def _record_process(self, ident: str, status: ProcessStatus) -> None:
        assert status.pid is not None and status.pgid is not None
        created = status.create_time or time.time()
        row = ProcessRow(ident, status.pid, status.pgid, created, status.mark)
        port = status.port or 0
        records = self._parts.records
        await self._write_process(
            ident,
            f"recording pid {row.pid} of {ident}",
            functools.partial(records.record_process, ident, row, port),
        )

    async def _forget_process(self, ident: str) -> None:
        records = self._parts.records
        await self._write_process(
            ident,
            f"forgetting the process of {ident}",
            functools.partial(records.forget_process, ident),
        )

    async def _write_process(self, ident: str, what: str, write: Callable[[], None]) -> None:
        refused = await self._parts.writes.write(f"process:{ident}", what, write)
        log = self.log(ident)
        if refused is not None and log is not None:
            log.note(f"{what} in the store failed, retrying: {refused}")

    def _background(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def not_started(settings: Settings) -> FleetError:
    url = f"http://{settings.server.host}:{settings.server.port}"
    return FleetError(f"no modelyard serve is running at {url}; start one with `modelyard serve`")
