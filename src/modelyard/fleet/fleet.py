"""The fleet: every instance of every model, its process, its port, its memory.

``Fleet`` is built by the composition root and used in two ways:

- not started (the CLI without a running manager): ``create``, ``update``, ``delete``,
  ``instances``, ``get`` work on the store; every instance shows as stopped.
- started (``await fleet.start()`` inside the manager's event loop, ``await fleet.aclose()`` at
  the end): instances run, are supervised, unloaded when idle, and admitted within the memory
  budget.

Each instance's process is a ``ManagedProcess`` whose owner task alone changes its state; the
fleet only posts requests to it (see ``modelyard.fleet.process``). Fleet methods must be
called from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from modelyard.catalog.model import Model
from modelyard.engines.base import Engine, LaunchPlan, LaunchSpec
from modelyard.engines.registry import EngineRegistry
from modelyard.errors import (
    FleetError,
    InstanceNotFound,
    InsufficientMemory,
    ModelyardError,
    StartFailed,
    ValidationFailed,
)
from modelyard.fleet import spawn
from modelyard.fleet.instance import (
    MAX_NUMBER,
    Desired,
    InstanceConfig,
    InstanceState,
    InstanceView,
    clean_config,
    instance_id,
)
from modelyard.fleet.logs import InstanceLog, log_path, read_tail
from modelyard.fleet.memory import MemoryInventory, MemoryLedger
from modelyard.fleet.ports import HOST, pick_port, port_is_free
from modelyard.fleet.process import ManagedProcess, ProcessStatus, State
from modelyard.fleet.records import InstanceRecords, ProcessRow
from modelyard.routing.eviction import RunningUse, plan_admission
from modelyard.settings import Settings
from modelyard.store import Store
from modelyard.upstream import UpstreamPool

logger = logging.getLogger(__name__)

ModelLookup = Callable[[str], Model]
"""``model_id -> Model``; raises ModelNotFound (``Catalog.get``)."""

InventoryReader = Callable[[], MemoryInventory]
EventKind = Literal["created", "updated", "deleted", "state"]
_HOLDING = (State.STARTING, State.READY, State.STOPPING)
_RSS_MAX_AGE_S = 1.0


@dataclass(frozen=True)
class FleetEvent:
    """Something changed. ``state``/``error`` are the instance's after the change."""

    kind: EventKind
    instance_id: str
    state: InstanceState | None = None
    error: str | None = None
    at: float = field(default_factory=time.time)


@dataclass(eq=False)
class _Entry:
    id: str
    model_id: str
    number: int
    port: int
    config: InstanceConfig
    desired: Desired
    process: ManagedProcess | None = None
    plan: LaunchPlan | None = None
    error: str | None = None  # a failure before any process ran (engine, memory, port)
    in_flight: int = 0
    last_used: float | None = None
    estimate: int = 0
    device: int | None = None
    estimated: bool = False  # estimate computed lazily: the catalog may scan on first use
    rss: tuple[int, float, int | None] | None = None  # (pid, monotonic time read, bytes)
    reserved: bool = False  # admitted: counts against the budget until stopped
    unloading: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class _Hooks:
    """What one process tells the fleet (see ``ProcessHooks``)."""

    def __init__(self, fleet: Fleet, entry: _Entry) -> None:
        self._fleet = fleet
        self._entry = entry

    def changed(self, status: ProcessStatus) -> None:
        self._fleet._changed(self._entry, status)

    async def spawned(self, status: ProcessStatus) -> None:
        await self._fleet._record_process(self._entry, status)

    async def exited(self) -> None:
        await self._fleet._forget_process(self._entry)


class Fleet:
    """Every instance. See the module docstring for the started / not started split."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        engines: EngineRegistry,
        model_lookup: ModelLookup,
        *,
        inventory: InventoryReader | None = None,
        ledger: MemoryLedger | None = None,
    ) -> None:
        """``inventory`` reads the memory budget (None: admit everything); ``ledger`` keeps the
        memory the servers report. Reads the instances from the store (no process runs)."""
        self._settings = settings
        self._store = store
        self._engines = engines
        self._model_lookup = model_lookup
        self._inventory = inventory
        self._ledger = ledger
        self._entries: dict[str, _Entry] = {}
        self._listeners: list[Callable[[FleetEvent], None]] = []
        self._client: UpstreamPool | None = None  # health checks; set while started
        self._tasks: set[asyncio.Task[Any]] = set()
        self._admission: asyncio.Lock | None = None
        self._create_lock: asyncio.Lock | None = None
        self._records = InstanceRecords(store)
        for row in self._records.load():
            entry = _Entry(row.id, row.model_id, row.number, row.port, row.config, row.desired)
            entry.error = row.error
            self._entries[entry.id] = entry

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._client is not None

    async def start(self) -> None:
        """Stop leftovers a previous run recorded (same pid and creation time only), then
        bring back, in the background, instances whose desired state is running or that
        autostart. Returns once leftovers are gone; the restores go on after."""
        if self._client is not None:
            return
        # Each check's own timeout bounds its connect too; one check at a time per backend.
        self._client = UpstreamPool(connect_s=60.0, max_idle=2)
        self._admission = asyncio.Lock()
        await self._stop_leftovers()
        for entry in self._entries.values():
            self._attach(entry)
        self._background(self._idle_loop())
        for entry in list(self._entries.values()):
            if entry.desired == "running" or entry.config.autostart:
                self._background(self._restore(entry))

    async def aclose(self) -> None:
        """Stop every instance (concurrently) and the background tasks. Desired states are
        kept, so the next start brings back what was running."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        processes = [e.process for e in self._entries.values() if e.process is not None]
        await asyncio.gather(*(p.aclose() for p in processes), return_exceptions=True)
        for entry in self._entries.values():
            entry.process = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- reading ----------------------------------------------------------------------------

    def instances(self) -> list[InstanceView]:
        """Every instance, sorted by id. Never blocks on a process."""
        return [self._view(self._entries[key]) for key in sorted(self._entries)]

    def get(self, instance_id: str) -> InstanceView:
        """One instance. Raises InstanceNotFound."""
        return self._view(self._entry(instance_id))

    def logs(self, instance_id: str, lines: int = 200) -> list[str]:
        """The last ``lines`` of the instance's log (from memory when running, else the file)."""
        entry = self._entry(instance_id)
        if entry.process is not None and entry.process.log.tail():
            return entry.process.log.tail(lines)
        return read_tail(log_path(self._settings.logs_dir, entry.id), lines)

    def log_file(self, instance_id: str) -> str:
        return str(log_path(self._settings.logs_dir, self._entry(instance_id).id))

    # -- configuration ----------------------------------------------------------------------

    async def create(
        self,
        model_id: str,
        config: InstanceConfig | dict[str, Any] | None = None,
        count: int = 1,
        actor: str = "cli",
    ) -> list[InstanceView]:
        """Create ``count`` instances of ``model_id`` (lowest free numbers, free ports).

        Raises ModelNotFound, ValidationFailed (config, count), EngineError (no such engine),
        NoFreePort, Conflict (all 99 numbers used). Nothing is started.
        """
        model = self._model_lookup(model_id)
        self._engines.get(model.engine)
        cleaned = config if isinstance(config, InstanceConfig) else clean_config(config or {})
        if not 1 <= count <= MAX_NUMBER:
            raise ValidationFailed(f"count must be 1-{MAX_NUMBER}", param="count")
        async with self._changes_lock():
            running_ports = {e.port for e in self._entries.values()}
            rows = await asyncio.to_thread(
                self._records.insert,
                model.id,
                cleaned,
                count,
                actor=actor,
                port_range=self._settings.fleet.port_range,
                gateway_port=self._settings.server.port,
                held=running_ports,
            )
        created = []
        for number, port in rows:
            entry = _Entry(
                instance_id(model.id, number), model.id, number, port, cleaned, "stopped"
            )
            entry.estimate, entry.device = self._estimate(entry)
            self._entries[entry.id] = entry
            if self.started:
                self._attach(entry)
            self._emit(FleetEvent("created", entry.id, "stopped"))
            created.append(self._view(entry))
        return created

    def _changes_lock(self) -> asyncio.Lock:
        """Serialises creates and updates (numbers, ports and configs are read then written)."""
        if self._create_lock is None:
            self._create_lock = asyncio.Lock()
        return self._create_lock

    async def update(
        self, instance_id: str, changes: dict[str, Any], actor: str = "cli"
    ) -> InstanceView:
        """Change an instance's settings (keys of InstanceConfig). Raises InstanceNotFound,
        ValidationFailed. Engine arguments apply at the next start or restart."""
        entry = self._entry(instance_id)
        # Read, merge and write under one lock: two updates built from the same old config
        # would otherwise both land and the second would silently undo the first.
        async with self._changes_lock():
            old = entry.config
            new = clean_config(changes, base=old)
            await asyncio.to_thread(self._records.write_config, entry.id, old, new, actor=actor)
            entry.config = new
            entry.estimated = False
        self._emit(FleetEvent("updated", entry.id, self._view(entry).state))
        return self._view(entry)

    async def delete(self, instance_id: str, actor: str = "cli") -> None:
        """Stop the instance (blocks until it has stopped), then forget it and free its port.
        Raises InstanceNotFound."""
        entry = self._entry(instance_id)
        if entry.process is not None:
            await entry.process.aclose()
            entry.process = None
        await asyncio.to_thread(
            self._records.remove, entry.id, entry.port, entry.config, actor=actor
        )
        self._entries.pop(entry.id, None)
        self._emit(FleetEvent("deleted", entry.id))

    # -- running ----------------------------------------------------------------------------

    async def start_instance(self, instance_id: str, actor: str = "api") -> InstanceView:
        """Start and block until ready; its desired state becomes running.

        Raises StartFailed (with the reason and the last log lines), InsufficientMemory,
        EngineError (BinaryNotFound, DuplicateFlag, missing model file), NoFreePort,
        ModelNotFound, InstanceNotFound, FleetError when the fleet is not started.
        """
        entry = self._entry(instance_id)
        await self._set_desired(entry, "running", actor)
        return await self._ensure(entry)

    async def stop_instance(self, instance_id: str, actor: str = "api") -> InstanceView:
        """Stop (SIGTERM, SIGKILL after stop_timeout_s) and block until stopped; desired state
        becomes stopped. A start under way is abandoned (its waiters get StartFailed)."""
        entry = self._entry(instance_id)
        await self._set_desired(entry, "stopped", actor)
        entry.error = None
        await self._process(entry).stop()
        return self._view(entry)

    async def restart_instance(self, instance_id: str, actor: str = "api") -> InstanceView:
        """Stop then start with the current settings; blocks until ready. Raises as
        ``start_instance``."""
        entry = self._entry(instance_id)
        process = self._process(entry)
        if process.status().state in (State.STOPPED, State.ERROR):
            return await self.start_instance(instance_id, actor)
        await self._set_desired(entry, "running", actor)
        plan = self._plan(entry, check_port=False)
        entry.plan = plan
        await process.restart(plan)
        return self._view(entry)

    async def ensure_ready(self, instance_id: str) -> InstanceView:
        """Block until the instance is serving, the start fails, or the caller is cancelled.

        Ready: returns at once. Starting: waits for that start (any number of concurrent
        callers cause one start). Stopping (idle unload, eviction): waits for the stop, then
        starts again. Never hangs: bounded by start_timeout_s plus the stop time; past that
        raises StartFailed. Raises as ``start_instance``. The desired state is not changed.
        """
        entry = self._entry(instance_id)
        if entry.process is not None and entry.process.status().state == State.READY:
            return self._view(entry)
        fleet = self._settings.fleet
        bound = fleet.start_timeout_s + 2 * fleet.stop_timeout_s + 1.0
        try:
            async with asyncio.timeout(bound):
                return await self._ensure(entry)
        except TimeoutError:
            raise StartFailed(f"{entry.id}: not ready within {bound:g}s") from None

    @contextlib.asynccontextmanager
    async def lease(self, instance_id: str) -> AsyncIterator[None]:
        """Hold for the duration of one request: counts ``in_flight`` and updates
        ``last_used``. Idle unload and eviction never stop an instance with a lease out.
        Enter it before ``ensure_ready``, so an unload cannot slip in between.
        Raises InstanceNotFound."""
        entry = self._entry(instance_id)
        entry.in_flight += 1
        entry.last_used = time.monotonic()
        try:
            yield
        finally:
            entry.in_flight -= 1
            entry.last_used = time.monotonic()

    # -- events -----------------------------------------------------------------------------

    def add_listener(self, callback: Callable[[FleetEvent], None]) -> Callable[[], None]:
        """Call ``callback`` (from the event loop, must not block) on every event. Returns a
        function that removes it."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    @contextlib.asynccontextmanager
    async def subscribe(self, maxsize: int = 1000) -> AsyncIterator[asyncio.Queue[FleetEvent]]:
        """A queue of events for the block's duration; when full the oldest event is dropped."""
        queue: asyncio.Queue[FleetEvent] = asyncio.Queue(maxsize)

        def put(event: FleetEvent) -> None:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

        remove = self.add_listener(put)
        try:
            yield queue
        finally:
            remove()

    # -- internals: entries and views -------------------------------------------------------

    def _entry(self, instance_id: str) -> _Entry:
        entry = self._entries.get(instance_id)
        if entry is None:
            raise InstanceNotFound(f"no instance '{instance_id}'", param="instance")
        return entry

    def _view(self, entry: _Entry) -> InstanceView:
        if not entry.estimated:
            entry.estimate, entry.device = self._estimate(entry)
        status = entry.process.status() if entry.process is not None else ProcessStatus()
        state: InstanceState = status.state.value
        error = status.error
        if status.state == State.STOPPED and entry.error is not None:
            state, error = "error", entry.error
        uptime = time.time() - status.started_at if status.pid and status.started_at else None
        return InstanceView(
            id=entry.id,
            model_id=entry.model_id,
            number=entry.number,
            state=state,
            error=error,
            port=entry.port,
            base_url=f"http://{HOST}:{entry.port}",
            pid=status.pid,
            started_at=status.started_at if status.pid else None,
            uptime_s=uptime,
            last_used=entry.last_used,
            in_flight=entry.in_flight,
            config=entry.config,
            memory_estimate=entry.estimate,
            memory_measured=self._rss(entry, status.pid),
            restarts=status.restarts,
            desired=entry.desired,
            log_tail=status.log_tail,
            memory_device=entry.device,
        )

    def _rss(self, entry: _Entry, pid: int | None) -> int | None:
        """The process tree's RSS, read at most once a second: views are taken on the
        gateway's hot path, and walking /proc for descendants costs milliseconds."""
        if pid is None:
            return None
        now = time.monotonic()
        if entry.rss is None or entry.rss[0] != pid or now - entry.rss[1] > _RSS_MAX_AGE_S:
            entry.rss = (pid, now, spawn.tree_rss(pid))
        return entry.rss[2]

    def _attach(self, entry: _Entry) -> ManagedProcess:
        assert self._client is not None
        fleet = self._settings.fleet
        log = InstanceLog(
            log_path(self._settings.logs_dir, entry.id),
            max_bytes=fleet.log_max_bytes,
            backups=fleet.log_backups,
            tail_lines=fleet.log_tail_lines,
        )
        entry.process = ManagedProcess(entry.id, fleet, log, self._client, _Hooks(self, entry))
        return entry.process

    def _process(self, entry: _Entry) -> ManagedProcess:
        if self._client is None:
            url = f"http://{self._settings.server.host}:{self._settings.server.port}"
            raise FleetError(
                f"no modelyard serve is running at {url}; start one with `modelyard serve`"
            )
        return entry.process or self._attach(entry)

    def _emit(self, event: FleetEvent) -> None:
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:  # a listener's bug must not stop the fleet
                logger.exception("fleet event listener failed")

    def _background(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- internals: starting ----------------------------------------------------------------

    def _engine_and_spec(self, entry: _Entry, port: int) -> tuple[Engine, LaunchSpec]:
        model = self._model_lookup(entry.model_id)
        engine = self._engines.get(model.engine)
        spec = LaunchSpec(entry.id, model, port, alias=entry.id, args=entry.config.engine_args)
        return engine, spec

    def _estimate(self, entry: _Entry) -> tuple[int, int | None]:
        entry.estimated = True
        try:
            engine, spec = self._engine_and_spec(entry, entry.port)
            estimate = engine.estimate(spec)
        except ModelyardError:
            return 0, None
        return estimate.total, estimate.device

    def _plan(self, entry: _Entry, *, check_port: bool) -> LaunchPlan:
        """The command for the next start. With ``check_port``, a port another process took
        since is replaced by a free one (and stored). Raises EngineError, NoFreePort..."""
        if check_port and not port_is_free(entry.port):
            held = {e.port for e in self._entries.values() if e is not entry}
            old = entry.port
            entry.port = pick_port(
                self._settings.fleet.port_range,
                gateway_port=self._settings.server.port,
                held=held,
            )
            self._records.write_port(entry.id, entry.port)
            if entry.process is not None:
                entry.process.log.note(f"port {old} is taken; moved to {entry.port}")
        engine, spec = self._engine_and_spec(entry, entry.port)
        return engine.plan(spec)

    async def _ensure(self, entry: _Entry) -> InstanceView:
        process = self._process(entry)
        async with entry.lock:
            state = process.status().state
            if state == State.READY:
                return self._view(entry)
            try:
                if state in (State.STOPPED, State.ERROR) or entry.plan is None:
                    entry.plan = self._plan(entry, check_port=state in (State.STOPPED, State.ERROR))
                if state not in (State.STARTING, State.READY):
                    await self._admit(entry)
            except ModelyardError as exc:
                entry.error = exc.message
                self._emit(FleetEvent("state", entry.id, "error", exc.message))
                raise
            entry.error = None
            reply = process.post_start(entry.plan)  # posted in order, under the lock
        await process.wait(reply)
        return self._view(entry)

    async def _admit(self, entry: _Entry) -> None:
        """Reserve the instance's memory, evicting idle unpinned instances (LRU) if needed.
        Raises InsufficientMemory listing what holds the memory."""
        if self._inventory is None or entry.reserved:
            return
        assert self._admission is not None
        async with self._admission:
            engine, spec = self._engine_and_spec(entry, entry.port)
            estimate = engine.estimate(spec)
            entry.estimate, entry.device = estimate.total, estimate.device
            for _attempt in range(3):
                inventory = await asyncio.to_thread(self._inventory)
                try:
                    budget = inventory.budget(estimate.device)
                    total = inventory.total(estimate.device)
                except KeyError as exc:
                    raise InsufficientMemory(f"cannot start {entry.id}: {exc.args[0]}") from None
                decision = plan_admission(
                    estimate,
                    budget,
                    self._holding(exclude=entry),
                    total_bytes=total,
                    reserve_bytes=inventory.reserve_bytes,
                )
                if not decision.admit:
                    raise InsufficientMemory(f"cannot start {entry.id}: {decision.reason}")
                if not decision.evict:
                    entry.reserved = True
                    return
                for victim in decision.evict:
                    await self._evict(self._entries[victim])
            raise InsufficientMemory(f"cannot start {entry.id}: instances to evict became busy")

    def _holding(self, exclude: _Entry) -> list[RunningUse]:
        uses = []
        for entry in self._entries.values():
            if entry is exclude or entry.process is None:
                continue
            if entry.reserved or entry.process.status().state in _HOLDING:
                uses.append(
                    RunningUse(
                        entry.id,
                        entry.estimate,
                        entry.device,
                        pinned=entry.config.pinned,
                        in_flight=entry.in_flight,
                        last_used=entry.last_used or 0.0,
                    )
                )
        return uses

    async def _evict(self, entry: _Entry) -> None:
        """Stop an idle unpinned instance; checked again by its owner when it takes the stop."""
        assert entry.process is not None
        status = await entry.process.stop(
            only_if=lambda: entry.in_flight == 0 and not entry.config.pinned
        )
        if status.state == State.STOPPED:
            entry.process.log.note("stopped to free memory for another instance")
            await self._set_desired(entry, "stopped", "fleet")

    async def _restore(self, entry: _Entry) -> None:
        try:
            await self._ensure(entry)
        except ModelyardError as exc:
            logger.warning("could not bring back %s: %s", entry.id, exc.message.splitlines()[0])

    # -- internals: idle unload -------------------------------------------------------------

    def _idle_for(self, entry: _Entry) -> float:
        status = entry.process.status() if entry.process is not None else None
        if status is None or status.ready_at is None:
            return 0.0
        since_ready = time.time() - status.ready_at
        if entry.last_used is None:
            return since_ready
        return min(since_ready, time.monotonic() - entry.last_used)

    def _idle_interval(self) -> float:
        ttls = [e.config.idle_ttl for e in self._entries.values() if e.config.idle_ttl]
        return min(1.0, max(0.02, min(ttls) / 4)) if ttls else 1.0

    async def _idle_loop(self) -> None:
        """Unload instances idle for their idle_ttl (ready, no lease out)."""
        while True:
            await asyncio.sleep(self._idle_interval())
            for entry in list(self._entries.values()):
                ttl = entry.config.idle_ttl
                process = entry.process
                if ttl is None or process is None or entry.unloading:
                    continue
                if process.status().state != State.READY or entry.in_flight:
                    continue
                if self._idle_for(entry) >= ttl:
                    entry.unloading = True
                    self._background(self._unload(entry, ttl))

    async def _unload(self, entry: _Entry, ttl: float) -> None:
        assert entry.process is not None
        try:
            status = await entry.process.stop(
                only_if=lambda: entry.in_flight == 0 and self._idle_for(entry) >= ttl
            )
            if status.state == State.STOPPED:
                entry.process.log.note(f"unloaded after {ttl:g}s idle")
                await self._set_desired(entry, "stopped", "fleet")
        finally:
            entry.unloading = False

    # -- internals: hooks -------------------------------------------------------------------

    def _changed(self, entry: _Entry, status: ProcessStatus) -> None:
        if status.state in (State.STOPPED, State.ERROR):
            entry.reserved = False
        if status.state == State.READY and self._ledger is not None and entry.process:
            self._background(self._measure(entry, entry.process.log.tail()))
        state: InstanceState = status.state.value
        self._emit(FleetEvent("state", entry.id, state, status.error))

    async def _measure(self, entry: _Entry, lines: list[str]) -> None:
        """Keep the buffer sizes the server reported, to correct later estimates."""
        try:
            engine, spec = self._engine_and_spec(entry, entry.port)
            buffers = engine.parse_memory_log(lines)
            key_of = getattr(engine, "measurement_key", None)
            if not buffers or key_of is None or self._ledger is None:
                return
            await asyncio.to_thread(self._ledger.record, entry.model_id, key_of(spec), buffers)
        except ModelyardError:
            return

    async def _record_process(self, entry: _Entry, status: ProcessStatus) -> None:
        assert status.pid is not None and status.pgid is not None
        row = ProcessRow(entry.id, status.pid, status.pgid, status.create_time or time.time())
        try:
            await asyncio.to_thread(self._records.record_process, entry.id, row, entry.port)
        except ModelyardError:
            logger.exception("could not record the process of %s", entry.id)

    async def _forget_process(self, entry: _Entry) -> None:
        await asyncio.to_thread(self._records.forget_process, entry.id)

    async def _stop_leftovers(self) -> None:
        rows = await asyncio.to_thread(self._records.processes)
        timeout = self._settings.fleet.stop_timeout_s
        stopped = await asyncio.gather(
            *(spawn.stop_leftover(r.pid, r.pgid, r.create_time, timeout) for r in rows)
        )
        for row, was_stopped in zip(rows, stopped, strict=True):
            if was_stopped:
                logger.warning("stopped leftover server of %s (pid %s)", row.instance_id, row.pid)
        await asyncio.to_thread(self._records.clear_processes)

    async def _set_desired(self, entry: _Entry, desired: Desired, actor: str) -> None:
        if entry.desired == desired:
            return
        old, entry.desired = entry.desired, desired
        await asyncio.to_thread(self._records.write_desired, entry.id, old, desired, actor=actor)
