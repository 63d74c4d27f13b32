"""The fleet: every instance of every model, its process, its port, its memory.

``Fleet`` is the face the gateway, the API, the profiles and the CLI use; it holds four parts
with one job each and owns no mutable state of its own:

- ``InstanceConfigs`` (``fleet.configs``): the records (model, number, port, settings, desired
  state), written through to the store, with an expected-version check on updates;
- ``Supervisor`` (``fleet.supervision``): one ``ManagedProcess`` per instance and the start
  decisions in front of it;
- ``MemoryBudget`` (``fleet.budget``): estimates, admitted instances, the inventory;
- ``IdleUnloader`` (``fleet.idle``): stops instances idle for their ``idle_ttl``.

Requests at each instance are counted by the ``Leases`` (``fleet.leases``) the composition root
shares with the gateway.

Used in two ways:

- not started (the CLI without a running manager): ``create``, ``update``, ``delete``,
  ``instances``, ``get`` work on the store; every instance shows as stopped.
- started (``await fleet.start()`` inside the manager's event loop, ``await fleet.aclose()`` at
  the end): instances run, are supervised, unloaded when idle, and admitted within the memory
  budget.

Every change is told to the fleet's listeners (``FleetEvent``, synchronously on the loop) and,
when an ``EventBus`` is given, published there (``instance.changed`` for created, updated and
deleted, ``instance.status`` for state changes), whoever asked for it. Views are snapshots
with no side effect. Fleet methods must be called from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from modelyard.engines.registry import EngineRegistry
from modelyard.errors import ModelyardError, StartFailed
from modelyard.events import EventBus
from modelyard.fleet import spawn
from modelyard.fleet.budget import InventoryReader, MemoryBudget
from modelyard.fleet.configs import InstanceConfigs, InstanceRecord
from modelyard.fleet.idle import IdleUnloader
from modelyard.fleet.instance import InstanceConfig, InstanceState, InstanceView, clean_config
from modelyard.fleet.leases import Leases
from modelyard.fleet.logs import log_path, read_tail
from modelyard.fleet.memory import MemoryLedger, read_inventory
from modelyard.fleet.pending import PendingWrites
from modelyard.fleet.ports import HOST
from modelyard.fleet.process import ProcessStatus, State
from modelyard.fleet.specs import ModelLookup, Specs
from modelyard.fleet.supervision import Parts, Supervisor, not_started
from modelyard.settings import Settings
from modelyard.store import Store
from modelyard.store.instances import InstanceRecords
from modelyard.upstream import Transport, UpstreamPool

__all__ = ["Fleet", "FleetEvent", "ModelLookup"]

logger = logging.getLogger(__name__)

EventKind = Literal["created", "updated", "deleted", "state"]


@dataclass(frozen=True)
class FleetEvent:
    """Something changed. ``state``/``error`` are the instance's after the change."""

    kind: EventKind
    instance_id: str
    state: InstanceState | None = None
    error: str | None = None
    at: float = field(default_factory=time.time)


class Fleet:
    """Every instance. See the module docstring."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        engines: EngineRegistry,
        model_lookup: ModelLookup,
        *,
        inventory: InventoryReader | None = None,
        memory: MemoryBudget | None = None,
        ledger: MemoryLedger | None = None,
        leases: Leases | None = None,
        transport: Transport | None = None,
        events: EventBus | None = None,
    ) -> None:
        """``inventory`` reads the memory budget (None: admit everything) unless ``memory``
        (the budget over a reader) is given; ``ledger`` keeps the
        memory the servers report; ``transport`` carries the health checks (None: the fleet
        opens its own pool at start). Reads the instances from the store (no process runs)."""
        self._settings = settings
        self._events = events
        self._listeners: list[Callable[[FleetEvent], None]] = []
        self._own_transport = transport is None
        self._transport = transport
        self._started = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.leases = leases or Leases(settings.gateway.queue_size, settings.gateway.retry_after_s)
        if memory is None:
            read = inventory or functools.partial(read_inventory, settings.memory)
            memory = MemoryBudget(read, enforce=inventory is not None)
        self.memory = memory
        self._writes = PendingWrites()
        self.configs = InstanceConfigs(settings, store, self._config_changed, self._writes)
        self._specs = Specs(engines, model_lookup)
        self._parts = Parts(
            settings=settings,
            configs=self.configs,
            records=InstanceRecords(store),
            specs=self._specs,
            budget=self.memory,
            leases=self.leases,
            ledger=ledger,
            writes=self._writes,
        )
        self._supervisor: Supervisor | None = None
        self._slots: dict[str, int | None] = {}  # derived, like the estimates: see _describe
        self.refresh_estimates()

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._started

    async def start(self) -> None:
        """Stop leftovers a previous run recorded (same pid and creation time only), then
        bring back, in the background, instances whose desired state is running or that
        autostart. Returns once leftovers are gone; the restores go on after."""
        if self._started:
            return
        if self._transport is None:
            # Each check's own timeout bounds its connect too; one check at a time per backend.
            self._transport = UpstreamPool(connect_s=60.0, max_idle=2)
        supervisor = self._supervisor = Supervisor(
            self._parts, self._transport, self._state_changed
        )
        self._started = True
        await self.memory.inventory()
        await supervisor.stop_leftovers()
        idle = IdleUnloader(self.configs, supervisor, self.leases)
        self._background(idle.run(self._background))
        for record in self.configs.all():
            supervisor.attach(record.id)
            if record.desired == "running" or record.config.autostart:
                self._background(self._restore(record.id))

    async def aclose(self) -> None:
        """Stop every instance (concurrently) and the background tasks. Desired states are
        kept, so the next start brings back what was running."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._supervisor is not None:
            await self._supervisor.aclose()
        await self._writes.aclose()  # after the processes: their last rows are in it
        self._started = False
        if self._own_transport and self._transport is not None:
            await self._transport.aclose()
            self._transport = None

    # -- reading ----------------------------------------------------------------------------

    def instances(self, *, measure: bool = True) -> list[InstanceView]:
        """Every instance, sorted by id. Never blocks on a process. ``measure`` reads each
        server's RSS (walking /proc: milliseconds; the gateway's routing view skips it)."""
        return [self._view(record, measure) for record in self.configs.all()]

    def get(self, instance_id: str) -> InstanceView:
        """One instance. Raises InstanceNotFound."""
        return self._view(self.configs.get(instance_id), True)

    def logs(self, instance_id: str, lines: int = 200) -> list[str]:
        """The last ``lines`` of the instance's log (from memory when running, else the file)."""
        record = self.configs.get(instance_id)
        log = self._supervisor.log(record.id) if self._supervisor is not None else None
        if log is not None and log.tail():
            return log.tail(lines)
        return read_tail(log_path(self._settings.logs_dir, record.id), lines)

    def log_file(self, instance_id: str) -> str:
        return str(log_path(self._settings.logs_dir, self.configs.get(instance_id).id))

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
        model = self._specs.models(model_id)
        self._specs.engines.get(model.engine)
        cleaned = config if isinstance(config, InstanceConfig) else clean_config(config or {})
        created = await self.configs.create(model.id, cleaned, count, actor=actor)
        return [self._view(record, False) for record in created]

    async def update(
        self,
        instance_id: str,
        changes: dict[str, Any],
        actor: str = "cli",
        *,
        expected_version: str | None = None,
    ) -> InstanceView:
        """Change an instance's settings (keys of InstanceConfig). Raises InstanceNotFound,
        ValidationFailed, Conflict (``expected_version`` given and stale). Engine arguments
        apply at the next start or restart."""
        record = await self.configs.update(
            instance_id, changes, actor=actor, expected_version=expected_version
        )
        return self._view(record, True)

    async def delete(self, instance_id: str, actor: str = "cli") -> None:
        """Stop the instance (blocks until it has stopped), then forget it and free its port.
        Raises InstanceNotFound."""
        self.configs.get(instance_id)
        if self._supervisor is not None:
            await self._supervisor.close(instance_id)
        await self.configs.delete(instance_id, actor=actor)

    # -- running ----------------------------------------------------------------------------

    async def start_instance(self, instance_id: str, actor: str = "api") -> InstanceView:
        """Start and block until ready; its desired state becomes running.

        Raises StartFailed (with the reason and the last log lines), InsufficientMemory,
        EngineError (BinaryNotFound, DuplicateFlag, missing model file), NoFreePort,
        ModelNotFound, InstanceNotFound, FleetError when the fleet is not started.
        """
        supervisor = self._running()
        self.configs.get(instance_id)
        await self.configs.set_desired(instance_id, "running", actor=actor)
        await supervisor.ensure(instance_id)
        return self.get(instance_id)

    async def stop_instance(self, instance_id: str, actor: str = "api") -> InstanceView:
        """Stop (SIGTERM, SIGKILL after stop_timeout_s) and block until stopped; desired state
        becomes stopped. A start under way is abandoned (its waiters get StartFailed)."""
        supervisor = self._running()
        self.configs.get(instance_id)
        await self.configs.set_desired(instance_id, "stopped", actor=actor)
        await supervisor.stop(instance_id)
        return self.get(instance_id)

    async def sleep_instance(self, instance_id: str) -> InstanceView:
        """Put a ready instance whose engine can sleep (vLLM sleep mode) to sleep, as the
        idle unloader does; blocks until the call answered. The view says whether it sleeps
        (unchanged when it is not ready, cannot sleep or the call failed). The next request
        or start wakes it. Raises InstanceNotFound, FleetError when the fleet is not started."""
        supervisor = self._running()
        self.configs.get(instance_id)
        await supervisor.sleep(instance_id)
        return self.get(instance_id)

    async def restart_instance(self, instance_id: str, actor: str = "api") -> InstanceView:
        """Stop then start with the current settings; blocks until ready. Raises as
        ``start_instance``."""
        supervisor = self._running()
        self.configs.get(instance_id)
        await self.configs.set_desired(instance_id, "running", actor=actor)
        await supervisor.restart(instance_id)
        return self.get(instance_id)

    async def ensure_ready(self, instance_id: str) -> InstanceView:
        """Block until the instance is serving, the start fails, or the caller is cancelled.

        Ready: returns at once. Starting: waits for that start (any number of concurrent
        callers cause one start). Stopping (idle unload, eviction): waits for the stop, then
        starts again. Never hangs: bounded by start_timeout_s plus the stop time; past that
        raises StartFailed. Raises as ``start_instance``. The desired state is not changed.
        """
        supervisor = self._running()
        record = self.configs.get(instance_id)
        if supervisor.status(record.id).state != State.READY:
            fleet = self._settings.fleet
            bound = fleet.start_timeout_s + 2 * fleet.stop_timeout_s + 1.0
            try:
                async with asyncio.timeout(bound):
                    await supervisor.ensure(record.id)
            except TimeoutError:
                raise StartFailed(f"{record.id}: not ready within {bound:g}s") from None
        return self._view(self.configs.get(instance_id), False)

    @contextlib.asynccontextmanager
    async def lease(self, instance_id: str) -> AsyncIterator[None]:
        """Hold a lease (``Leases.take``) for the block. Idle unload and eviction never stop
        an instance with a lease out. Raises InstanceNotFound."""
        self.configs.get(instance_id)
        lease = self.leases.take(instance_id)
        try:
            yield
        finally:
            lease.release()

    def refresh_estimates(self) -> None:
        """Estimate every instance's memory again (the catalog changed)."""
        for record in self.configs.all():
            self._describe(record)

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

    # -- internals --------------------------------------------------------------------------

    def _running(self) -> Supervisor:
        if self._supervisor is None or not self._started:
            raise not_started(self._settings)
        return self._supervisor

    def _view(self, record: InstanceRecord, measure: bool) -> InstanceView:
        supervisor = self._supervisor
        status = supervisor.status(record.id) if supervisor is not None else ProcessStatus()
        state: InstanceState = status.state.value
        error = status.error
        failure = (supervisor.error(record.id) if supervisor else None) or record.broken
        if status.state == State.STOPPED and failure is not None:
            state, error = "error", failure
        pid = status.pid
        estimate = self.memory.estimate(record.id)
        plan = supervisor.plan(record.id) if supervisor is not None else None
        base_url = plan.base_url if plan is not None else f"http://{HOST}:{record.port}"
        return InstanceView(
            id=record.id,
            model_id=record.model_id,
            number=record.number,
            state=state,
            error=error,
            port=record.port,
            base_url=base_url,
            pid=pid,
            started_at=status.started_at if pid else None,
            uptime_s=time.time() - status.started_at if pid and status.started_at else None,
            last_used=self.leases.last_used(record.id),
            in_flight=self.leases.in_flight(record.id),
            config=record.config,
            memory_estimate=estimate.total if estimate else 0,
            memory_measured=spawn.tree_rss(pid) if measure and pid else None,
            restarts=status.restarts,
            desired=record.desired,
            log_tail=status.log_tail,
            memory_device=estimate.device if estimate else None,
            version=record.version,
            parallel_slots=self._slots.get(record.id),
            served_name=plan.served_name if plan is not None else None,
            api_key_env=plan.api_key_env if plan is not None else None,
            load=supervisor.metrics(record.id) if supervisor is not None else None,
            sleep_level=status.sleep_level,
        )

    def _describe(self, record: InstanceRecord) -> None:
        """What the engine says of the instance, computed when its settings or the catalog
        change, so a view computes nothing."""
        estimate = self._specs.estimate(record)
        self.memory.set_estimate(record.id, estimate, record.config.pinned)
        self._slots[record.id] = self._specs.parallel_slots(record)

    def _config_changed(self, kind: str, record: InstanceRecord) -> None:
        if kind == "deleted":
            self.memory.forget(record.id)
            self.leases.forget(record.id)
            self._slots.pop(record.id, None)
            self._emit(FleetEvent("deleted", record.id))
            return
        self._describe(record)
        view = self._view(record, False)
        self._emit(FleetEvent("created" if kind == "created" else "updated", record.id, view.state))

    def _state_changed(self, ident: str, status: ProcessStatus) -> None:
        self._emit(FleetEvent("state", ident, status.state.value, status.error))

    def _emit(self, event: FleetEvent) -> None:
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:  # a listener's bug must not stop the fleet
                logger.exception("fleet event listener failed")
        if self._events is not None:
            self._publish(self._events, event)

    @staticmethod
    def _publish(bus: EventBus, event: FleetEvent) -> None:
        """``instance.status`` for every event; ``instance.changed`` for a settings change."""
        status = {
            "instance_id": event.instance_id,
            "change": event.kind,
            "state": event.state,
            "error": event.error,
            "at": event.at,
        }
        bus.publish("instance.status", status)
        if event.kind != "state":
            ids = event.instance_id if event.kind == "deleted" else [event.instance_id]
            bus.publish("instance.changed", {event.kind: ids})

    async def _restore(self, ident: str) -> None:
        try:
            await self._running().ensure(ident)
        except ModelyardError as exc:
            logger.warning("could not bring back %s: %s", ident, exc.message.splitlines()[0])

    def _background(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
