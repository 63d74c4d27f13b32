"""One managed server process, owned by one task.

A ``ManagedProcess`` has exactly one owner task. It alone spawns, watches, restarts and kills
the process and changes the state; callers post requests (start, stop, restart, close) to its
queue and await the answer. So no caller acts on a stale snapshot: a start posted while a stop
is under way is served after the stop, by starting again (the race behind llama-swap's issue
#946, where requests hung during a TTL unload).

States and transitions (``status().state``)::

    stopped/error --start--> starting         spawn; poll health every health_interval_s
    starting --health 200--> ready            every start waiter gets the status
    starting --exit/timeout--> error          at once on exit (the wait races the health
                                              poll); after start_timeout_s otherwise.
                                              During a supervised restart: backoff instead
    starting --stop--> stopping --> stopped   start waiters get StartFailed
    ready --exit/wedged--> starting           supervised restart after a backoff
                                              (restart_backoff_s doubling up to
                                              restart_backoff_max_s), shown as ``starting``
                                              with ``error`` naming the cause
    ready --exit/wedged, limit hit--> error   more than restart_limit restarts in
                                              restart_window_s
    ready --stop--> stopping --> stopped      stop_argv or SIGTERM to the group, SIGKILL
                                              after stop_timeout_s; always reaped
    any --close--> stopping --> stopped       the owner task ends
    ready --sleep--> sleeping                 the plan's sleep call (vLLM sleep mode) answered
                                              2xx; the process lives on, the GPU is freed.
                                              A failed call leaves it ready (the caller
                                              falls back to a stop)
    sleeping --start--> ready                 the wake call, then GET is_sleeping until it
                                              says false (within start_timeout_s); every
                                              start waiter gets the status. A failed wake
                                              falls back to stop and start (a restart)
    sleeping --exit/wedged--> starting        as from ready
    sleeping --stop--> stopping --> stopped   as from ready

Attached plans (``LaunchPlan.attached``: Ollama's server, a remote API) run no process: a
start sends the plan's ``load`` call (when set) and polls readiness, a stop sends ``unload``
(when set); ``pid`` stays None, there is no exit to watch, wedge checks run as for a process.
A failed load call fails the start (``error``) like an exit while starting.

Readiness: GET ``health_path`` answers 200 (a refused connection or any other status is still
"loading": vLLM binds its port only once its engine is up), then, when the plan names a
``served_name``, GET ``models_path`` lists it (``data[].id``, or Ollama's ``models[].name``).

Wedged: ``wedge_failures`` consecutive failed health checks, one every
``wedge_check_interval_s``, while ready.

The hooks (``ProcessHooks``) are told of every change; a hook that raises is logged and noted
in the instance's log, and the owner goes on: it never ends for a hook's failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

from modelyard.engines.base import HttpCall, LaunchPlan
from modelyard.errors import FleetError, StartFailed, UpstreamError
from modelyard.fleet import spawn
from modelyard.fleet.logs import InstanceLog
from modelyard.settings import FleetSettings
from modelyard.upstream import Transport, bearer

logger = logging.getLogger(__name__)

_ERROR_TAIL_LINES = 20
_READER_GRACE_S = 1.0


class State(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    ERROR = "error"
    STOPPING = "stopping"
    SLEEPING = "sleeping"


@dataclass(frozen=True)
class ProcessStatus:
    """A consistent snapshot of one process. Times are wall-clock (``time.time()``)."""

    state: State = State.STOPPED
    error: str | None = None
    pid: int | None = None
    pgid: int | None = None
    create_time: float | None = None
    mark: str | None = None  # the spawn mark in the server's environment (see fleet.spawn)
    port: int | None = None
    started_at: float | None = None
    ready_at: float | None = None
    restarts: int = 0
    log_tail: tuple[str, ...] = ()
    sleep_level: int | None = None  # while sleeping: 1 (weights in host RAM) or 2 (dropped)


class ProcessHooks(Protocol):
    """What the owner tells the fleet. ``changed`` must not block; the others are awaited."""

    def changed(self, status: ProcessStatus) -> None: ...

    async def spawned(self, status: ProcessStatus) -> None: ...

    async def exited(self) -> None: ...


@dataclass
class _Request:
    kind: str  # "start" | "stop" | "restart" | "close" | "sleep"
    reply: asyncio.Future[ProcessStatus]
    plan: LaunchPlan | None = None
    only_if: Callable[[], bool] | None = None
    level: int = 1


@dataclass
class _Running:
    proc: spawn.Child | None  # None: an attached server
    plan: LaunchPlan
    exit_task: asyncio.Future[int]  # attached: set by the stop, never by the server
    reader: asyncio.Task[None] | None
    mark: str
    created: float
    waiters: list[asyncio.Future[ProcessStatus]] = field(default_factory=list)


def _answer(future: asyncio.Future[ProcessStatus], status: ProcessStatus) -> None:
    if not future.done():
        future.set_result(status)


def _fail(future: asyncio.Future[ProcessStatus], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
        future.exception()  # mark retrieved: a cancelled caller must not log a warning


class ManagedProcess:
    """One server process and the task that owns it. Create inside a running event loop."""

    def __init__(
        self,
        instance_id: str,
        settings: FleetSettings,
        log: InstanceLog,
        client: Transport,
        hooks: ProcessHooks,
    ) -> None:
        self.instance_id = instance_id
        self._settings = settings
        self.log = log
        self._client = client
        self._hooks = hooks
        self._status = ProcessStatus()
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._getter: asyncio.Task[_Request] | None = None
        self._restart_times: deque[float] = deque()
        self._running: _Running | None = None
        self._owner = asyncio.get_running_loop().create_task(
            self._own(), name=f"process {instance_id}"
        )

    # -- the callers' side ------------------------------------------------------------------

    def status(self) -> ProcessStatus:
        """The latest snapshot. Never blocks."""
        return self._status

    async def start(self, plan: LaunchPlan) -> ProcessStatus:
        """Blocks until the process is ready; returns at once if it already is.

        Starting: joins the start under way (one spawn for any number of callers). Stopping:
        waits for the stop to finish, then starts. Backing off after a crash: waits for the
        restart. Raises StartFailed with the reason and the last log lines. Not bounded here:
        the start timeout bounds the spawn, callers bound their own wait.
        """
        return await self._ask("start", plan=plan)

    async def stop(self, only_if: Callable[[], bool] | None = None) -> ProcessStatus:
        """Blocks until the process is stopped (a start under way is abandoned).

        ``only_if`` is evaluated by the owner when it takes the request, so a decision made
        earlier (idle, evictable) is checked again against the state at that moment; when it
        returns False nothing is done and the current status is returned.
        """
        return await self._ask("stop", only_if=only_if)

    async def restart(self, plan: LaunchPlan) -> ProcessStatus:
        """Stop (if running), then start with ``plan``; blocks until ready. Raises StartFailed."""
        return await self._ask("restart", plan=plan)

    async def aclose(self) -> None:
        """Stop the process and end the owner task. Blocks until both are done."""
        if not self._owner.done():
            with contextlib.suppress(FleetError):
                await self._ask("close")
        await asyncio.gather(self._owner, return_exceptions=True)
        self.log.close()

    async def sleep(self, level: int, only_if: Callable[[], bool] | None = None) -> ProcessStatus:
        """Put a ready server to sleep (its plan's sleep call at ``level``); blocks until the
        call answered. Returns the status: ``sleeping``, or unchanged when the server is not
        ready, has no sleep plan, ``only_if`` says no or the call failed (noted in the log)."""
        return await self.wait(self._post("sleep", only_if=only_if, level=level))

    def post_start(self, plan: LaunchPlan) -> asyncio.Future[ProcessStatus]:
        """Post a start now (in order with other requests); await it with ``wait``."""
        return self._post("start", plan=plan)

    async def wait(self, reply: asyncio.Future[ProcessStatus]) -> ProcessStatus:
        """The answer to a posted request. Raises what the request raises (StartFailed...)."""
        # If the owner dies of a bug, fail instead of waiting forever.
        either: set[asyncio.Future[Any]] = {reply, self._owner}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not reply.done():
            raise FleetError(f"instance {self.instance_id}: its supervisor stopped")
        return reply.result()

    def _post(
        self,
        kind: str,
        plan: LaunchPlan | None = None,
        only_if: Callable[[], bool] | None = None,
        level: int = 1,
    ) -> asyncio.Future[ProcessStatus]:
        if self._owner.done():
            raise FleetError(f"instance {self.instance_id} is closed")
        reply: asyncio.Future[ProcessStatus] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(kind, reply, plan, only_if, level))
        return reply

    async def _ask(
        self,
        kind: str,
        plan: LaunchPlan | None = None,
        only_if: Callable[[], bool] | None = None,
    ) -> ProcessStatus:
        return await self.wait(self._post(kind, plan, only_if))

    # -- the owner's side -------------------------------------------------------------------

    def _set(self, **changes: object) -> None:
        self._status = replace(self._status, **changes)  # type: ignore[arg-type]
        try:
            self._hooks.changed(self._status)
        except Exception:  # the state is changed; a listener's bug must not undo the owner
            logger.exception("%s: the state listener failed", self.instance_id)

    async def _tell(self, hook: str, call: Callable[[], Awaitable[None]]) -> None:
        """Await a hook. Its failure is logged and noted, never the owner task's end: a store
        write failing in ``exited`` once ended it, leaving the instance ``ready`` with no pid
        and every later request answered "closed"."""
        try:
            await call()
        except Exception as exc:
            logger.exception("%s: the %s hook failed", self.instance_id, hook)
            self.log.note(f"internal error after {hook} (the process is still supervised): {exc}")

    def _next_request(self) -> asyncio.Task[_Request]:
        if self._getter is None:
            self._getter = asyncio.get_running_loop().create_task(self._queue.get())
        return self._getter

    def _take_request(self) -> _Request:
        assert self._getter is not None
        request = self._getter.result()
        self._getter = None
        return request

    async def _own(self) -> None:
        """The owner loop: idle in stopped/error, taking one request at a time."""
        try:
            while True:
                getter = self._next_request()
                await asyncio.wait({getter})
                request = self._take_request()
                if request.kind == "close":
                    _answer(request.reply, self._status)
                    return
                if request.kind == "stop":
                    self._set(state=State.STOPPED, error=None, log_tail=())
                    _answer(request.reply, self._status)
                    continue
                if request.kind == "sleep":  # nothing runs: nothing to put to sleep
                    _answer(request.reply, self._status)
                    continue
                assert request.plan is not None
                self._restart_times.clear()
                if await self._live(request.plan, [request.reply]):
                    return
        finally:
            running = self._running
            if running is not None and running.proc is not None:  # a bug or cancellation
                spawn.signal_group(running.proc.pid, signal.SIGKILL)  # leave no orphan
            if self._getter is not None:
                self._getter.cancel()
            closed = FleetError(f"instance {self.instance_id} is closed")
            while not self._queue.empty():
                _fail(self._queue.get_nowait().reply, closed)

    async def _live(self, plan: LaunchPlan, waiters: list[asyncio.Future[ProcessStatus]]) -> bool:
        """Run the process from a start until it is down. Returns True when closing."""
        supervised = False
        while True:
            outcome = await self._start_once(plan, waiters, supervised)
            waiters = []
            if outcome.kind == "ready":
                assert outcome.running is not None
                outcome = await self._serve(outcome.running)
            if outcome.kind in ("stopped", "closed"):
                return outcome.kind == "closed"
            if outcome.kind == "restart":
                assert outcome.plan is not None
                plan, waiters, supervised = outcome.plan, outcome.waiters, False
                continue
            # crashed, wedged, or failed during a supervised restart
            if not outcome.retry or not self._may_restart():
                self._error(outcome.reason, outcome.waiters)
                return False
            backoff = await self._backoff(outcome.reason)
            if backoff.kind in ("stopped", "closed"):
                return backoff.kind == "closed"
            if backoff.kind == "restart" and backoff.plan is not None:
                plan = backoff.plan
            waiters, supervised = backoff.waiters, True

    def _may_restart(self) -> bool:
        now = time.monotonic()
        window = self._settings.restart_window_s
        while self._restart_times and now - self._restart_times[0] > window:
            self._restart_times.popleft()
        return len(self._restart_times) < self._settings.restart_limit

    def _error(self, reason: str, waiters: list[asyncio.Future[ProcessStatus]]) -> None:
        tail = tuple(self.log.tail(_ERROR_TAIL_LINES))
        self._set(
            state=State.ERROR,
            error=reason,
            pid=None,
            pgid=None,
            create_time=None,
            mark=None,
            ready_at=None,
            log_tail=tail,
        )
        failure = StartFailed(_with_tail(f"{self.instance_id}: {reason}", tail))
        for waiter in waiters:
            _fail(waiter, failure)

    async def _backoff(self, reason: str) -> _Outcome:
        """Wait before a supervised restart; a stop or close ends the wait."""
        delay = min(
            self._settings.restart_backoff_s * (2 ** len(self._restart_times)),
            self._settings.restart_backoff_max_s,
        )
        self._restart_times.append(time.monotonic())
        self._set(
            state=State.STARTING,
            error=f"restarting in {delay:.2f}s after: {reason}",
            pid=None,
            pgid=None,
            create_time=None,
            mark=None,
            ready_at=None,
            restarts=self._status.restarts + 1,
        )
        self.log.note(f"restarting in {delay:.2f}s after: {reason}")
        waiters: list[asyncio.Future[ProcessStatus]] = []
        timer = asyncio.get_running_loop().create_task(asyncio.sleep(delay))
        try:
            while True:
                getter = self._next_request()
                await asyncio.wait({getter, timer}, return_when=asyncio.FIRST_COMPLETED)
                if timer.done():
                    return _Outcome("restart", waiters=waiters)
                request = self._take_request()
                if request.kind in ("start", "restart"):
                    waiters.append(request.reply)
                    continue
                if request.kind == "sleep" or (
                    request.only_if is not None and not request.only_if()
                ):
                    _answer(request.reply, self._status)
                    continue
                failure = StartFailed(f"{self.instance_id}: stopped while restarting")
                for waiter in waiters:
                    _fail(waiter, failure)
                self._set(state=State.STOPPED, error=None, log_tail=())
                _answer(request.reply, self._status)
                return _Outcome("closed" if request.kind == "close" else "stopped")
        finally:
            timer.cancel()

    async def _start_once(
        self, plan: LaunchPlan, waiters: list[asyncio.Future[ProcessStatus]], supervised: bool
    ) -> _Outcome:
        """Spawn and wait for health, racing the exit, the timeout and new requests."""
        self._set(
            state=State.STARTING,
            error=self._status.error if supervised else None,
            log_tail=(),
            ready_at=None,
        )
        if plan.attached:
            self.log.note(f"attaching to {plan.base_url}")
            running = self._attach(plan, waiters)
        else:
            self.log.note(f"starting: {' '.join(plan.argv)}")
            mark = spawn.new_mark(self.instance_id)
            try:
                proc = await spawn.spawn(
                    plan.argv, plan.env, plan.cwd, pass_env=plan.pass_env, mark=mark
                )
            except OSError as exc:
                reason = f"cannot run {plan.argv[0]}: {exc.strerror or exc}"
                self.log.note(reason)
                return _Outcome("failed", reason=reason, waiters=waiters, retry=supervised)
            running = self._track(proc, plan, waiters, mark)
            status = self._status
            await self._tell("spawned", lambda: self._hooks.spawned(status))
        health = asyncio.get_running_loop().create_task(self._poll_health(plan))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.start_timeout_s
        try:
            while True:
                getter = self._next_request()
                watched: set[asyncio.Future[Any]] = {getter, running.exit_task, health}
                done, _ = await asyncio.wait(
                    watched,
                    timeout=max(0.0, deadline - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if health in done and health.exception() is not None:
                    reason = str(health.exception())
                    await self._terminate(running, reason)
                    return _Outcome(
                        "failed", reason=reason, waiters=running.waiters, retry=supervised
                    )
                if health in done:
                    self._set(state=State.READY, error=None, ready_at=time.time())
                    self.log.note(f"ready on {plan.base_url}")
                    for waiter in running.waiters:
                        _answer(waiter, self._status)
                    running.waiters = []
                    return _Outcome("ready", running=running)
                if running.exit_task in done:
                    code = running.exit_task.result()
                    await self._finish(running)
                    reason = f"exited with code {code} while starting"
                    return _Outcome(
                        "failed", reason=reason, waiters=running.waiters, retry=supervised
                    )
                if not done:
                    seconds = self._settings.start_timeout_s
                    await self._terminate(running, f"not ready after {seconds:g}s")
                    reason = f"not ready after {seconds:g}s (start timeout)"
                    return _Outcome(
                        "failed", reason=reason, waiters=running.waiters, retry=supervised
                    )
                outcome = await self._on_request(self._take_request(), running)
                if outcome is not None:
                    return outcome
        finally:
            health.cancel()

    async def _serve(self, running: _Running) -> _Outcome:
        """While ready: watch the exit, the health (wedge) and new requests."""
        wedge = asyncio.get_running_loop().create_task(self._watch_wedge(running.plan))
        try:
            while True:
                getter = self._next_request()
                watched: set[asyncio.Future[Any]] = {getter, running.exit_task, wedge}
                done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                if running.exit_task in done:
                    code = running.exit_task.result()
                    await self._finish(running)
                    return _Outcome("failed", reason=f"exited with code {code}", retry=True)
                if wedge in done:
                    reason = wedge.result()
                    await self._terminate(running, reason)
                    return _Outcome("failed", reason=reason, retry=True)
                outcome = await self._on_request(self._take_request(), running)
                if outcome is not None:
                    return outcome
        finally:
            wedge.cancel()

    async def _on_request(self, request: _Request, running: _Running) -> _Outcome | None:
        """A request while the process runs. None: keep going; an outcome: the process is down."""
        if request.kind == "start" and self._status.state == State.SLEEPING:
            if await self._wake(running):
                _answer(request.reply, self._status)
                return None
            request = _Request("restart", request.reply, running.plan)  # fall back
        if request.kind == "start":
            if self._status.state == State.READY:
                _answer(request.reply, self._status)
            else:
                running.waiters.append(request.reply)
            return None
        if request.kind == "sleep":
            if request.only_if is None or request.only_if():
                await self._sleep(running, request.level)
            _answer(request.reply, self._status)
            return None
        if request.kind == "stop" and request.only_if is not None and not request.only_if():
            _answer(request.reply, self._status)
            return None
        await self._terminate(running, f"{request.kind} requested")
        abandoned = StartFailed(f"{self.instance_id}: stopped before it was ready")
        if request.kind == "restart":
            assert request.plan is not None
            return _Outcome("restart", plan=request.plan, waiters=[*running.waiters, request.reply])
        for waiter in running.waiters:
            _fail(waiter, abandoned)
        self._set(state=State.STOPPED, error=None, log_tail=())
        _answer(request.reply, self._status)
        return _Outcome("closed" if request.kind == "close" else "stopped")

    def _attach(self, plan: LaunchPlan, waiters: list[asyncio.Future[ProcessStatus]]) -> _Running:
        """An attached server: nothing spawned, an exit that only the stop sets."""
        exit_task: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        running = _Running(None, plan, exit_task, None, "", time.time(), list(waiters))
        self._running = running
        self._set(pid=None, pgid=None, port=None, started_at=time.time())
        return running

    async def _send(self, plan: LaunchPlan, call: HttpCall, timeout_s: float) -> bytes:
        """Send one of the plan's calls; its body. Raises UpstreamError (refused, a non-2xx
        answer naming the status, a timeout)."""
        status, body = await self._client.call(
            call.method, plan.base_url + call.path, call.body, timeout_s, auth_header(plan)
        )
        if not 200 <= status < 300:
            text = body[:200].decode("utf-8", "replace").strip()
            raise UpstreamError(f"{call.method} {call.path} answered {status}: {text}")
        return body

    async def _sleep(self, running: _Running, level: int) -> None:
        plan = running.plan
        if self._status.state != State.READY or plan.sleep is None:
            return
        call = plan.sleep.sleep.get(level) or next(iter(plan.sleep.sleep.values()))
        try:
            await self._send(plan, call, self._settings.start_timeout_s)
        except UpstreamError as exc:
            self.log.note(f"could not sleep: {exc.message}")
            return
        self._set(state=State.SLEEPING, sleep_level=level)
        self.log.note(f"sleeping (level {level})")

    async def _wake(self, running: _Running) -> bool:
        """Wake a sleeping server and wait until it says it is awake; False when a call
        failed or it still sleeps after start_timeout_s (noted in the log)."""
        plan = running.plan
        assert plan.sleep is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.start_timeout_s
        self.log.note("waking up")
        try:
            await self._send(plan, plan.sleep.wake, self._settings.start_timeout_s)
            asleep = HttpCall("GET", plan.sleep.is_sleeping_path)
            while loop.time() < deadline:
                body = await self._send(plan, asleep, max(0.1, deadline - loop.time()))
                if not _is_sleeping(body):
                    self._set(state=State.READY, sleep_level=None, ready_at=time.time())
                    self.log.note("awake")
                    return True
                await asyncio.sleep(self._settings.health_interval_s)
            self.log.note(f"still asleep after {self._settings.start_timeout_s:g}s")
        except UpstreamError as exc:
            self.log.note(f"could not wake: {exc.message}")
        return False

    def _track(
        self,
        proc: spawn.Child,
        plan: LaunchPlan,
        waiters: list[asyncio.Future[ProcessStatus]],
        mark: str,
    ) -> _Running:
        loop = asyncio.get_running_loop()
        assert proc.stdout is not None
        reader = loop.create_task(self.log.pump(proc.stdout))
        created = spawn.create_time(proc.pid) or time.time()
        exit_task = loop.create_task(proc.exited())
        running = _Running(proc, plan, exit_task, reader, mark, created, list(waiters))
        self._running = running
        port = int(plan.base_url.rsplit(":", 1)[1].split("/", 1)[0])
        self._set(
            pid=proc.pid,
            pgid=proc.pid,
            create_time=created,
            mark=mark,
            port=port,
            started_at=time.time(),
        )
        self.log.note(f"pid {proc.pid}")
        return running

    async def _poll_health(self, plan: LaunchPlan) -> None:
        """Send the plan's load call (attached servers), then return once the server is
        ready (see the module docstring); polls every health_interval_s. Raises
        UpstreamError when the load call fails."""
        if plan.load is not None:
            await self._send(plan, plan.load, self._settings.start_timeout_s)
        url = plan.base_url + plan.health_path
        interval = self._settings.health_interval_s
        headers = auth_header(plan)
        while True:
            with contextlib.suppress(UpstreamError):
                healthy = await self._client.get_status(url, max(1.0, interval), headers) == 200
                if healthy and (plan.served_name is None or await self._lists(plan, headers)):
                    return
            await asyncio.sleep(interval)

    async def _lists(self, plan: LaunchPlan, headers: bytes) -> bool:
        url = plan.base_url + plan.models_path
        status, body = await self._client.call("GET", url, b"", 5.0, headers)
        return status == 200 and plan.served_name in listed_names(body)

    async def _watch_wedge(self, plan: LaunchPlan) -> str:
        """Returns a reason after wedge_failures consecutive failed checks."""
        url = plan.base_url + plan.health_path
        interval = self._settings.wedge_check_interval_s
        headers = auth_header(plan)
        failures = 0
        while True:
            await asyncio.sleep(interval)
            try:
                ok = await self._client.get_status(url, interval, headers) == 200
            except UpstreamError:
                ok = False
            failures = 0 if ok else failures + 1
            if failures >= self._settings.wedge_failures:
                return f"stopped answering health checks ({failures} failed in a row)"

    async def _terminate(self, running: _Running, why: str) -> None:
        """stop_argv or SIGTERM to the group; SIGKILL after stop_timeout_s; reap; record."""
        self._set(state=State.STOPPING, sleep_level=None)
        self.log.note(f"stopping ({why})")
        if running.proc is None:
            await self._detach(running)
            return
        pgid = running.proc.pid
        timeout = self._settings.stop_timeout_s
        if running.plan.stop_argv and not running.exit_task.done():
            await self._run_stop_command(running.plan, running.mark, timeout)
        elif not running.exit_task.done():
            spawn.signal_group(pgid, signal.SIGTERM)
        await asyncio.wait({running.exit_task}, timeout=timeout)
        if not running.exit_task.done():
            self.log.note(f"still running after {timeout:g}s: SIGKILL")
        spawn.signal_group(pgid, signal.SIGKILL)  # the leader or anything left in its group
        await asyncio.wait({running.exit_task})
        await self._finish(running)

    async def _detach(self, running: _Running) -> None:
        """Stop an attached server: its unload call (a failure is noted, the instance is
        stopped all the same: modelyard no longer counts on it)."""
        plan = running.plan
        if plan.unload is not None:
            try:
                await self._send(plan, plan.unload, self._settings.stop_timeout_s)
            except UpstreamError as exc:
                self.log.note(f"unload failed: {exc.message}")
        if not running.exit_task.done():
            running.exit_task.set_result(0)
        self._running = None
        self._set(pid=None, pgid=None, create_time=None, mark=None, ready_at=None)
        self.log.note("detached")

    async def _run_stop_command(self, plan: LaunchPlan, mark: str, limit_s: float) -> None:
        assert plan.stop_argv is not None
        try:
            stopper = await spawn.spawn(
                plan.stop_argv, plan.env, plan.cwd, pass_env=plan.pass_env, mark=mark
            )
        except OSError as exc:
            self.log.note(f"stop command failed: {exc}")
            return
        assert stopper.stdout is not None
        pump = asyncio.get_running_loop().create_task(self.log.pump(stopper.stdout))
        done, _ = await asyncio.wait({pump}, timeout=limit_s)
        if not done:
            spawn.signal_group(stopper.pid, signal.SIGKILL)
        await stopper.exited()
        pump.cancel()

    async def _finish(self, running: _Running) -> None:
        """After the exit: kill what is left of the group and whatever carries the spawn
        mark (a child that called setsid would otherwise keep the port), drain the log
        (bounded), clear the pid, tell the fleet."""
        assert running.proc is not None and running.reader is not None
        spawn.signal_group(running.proc.pid, signal.SIGKILL)
        escaped = await spawn.stop_marked(
            running.mark, running.created, self._settings.stop_timeout_s
        )
        if escaped:
            self.log.note(f"stopped {escaped} process(es) it started outside its session")
        await asyncio.wait({running.reader}, timeout=_READER_GRACE_S)
        running.reader.cancel()
        code = running.exit_task.result()
        self.log.note(f"exited with code {code}")
        self._running = None
        self._set(pid=None, pgid=None, create_time=None, mark=None, ready_at=None)
        await self._tell("exited", self._hooks.exited)


@dataclass
class _Outcome:
    kind: str  # "ready" | "stopped" | "closed" | "restart" | "failed"
    reason: str = ""
    waiters: list[asyncio.Future[ProcessStatus]] = field(default_factory=list)
    retry: bool = False
    running: _Running | None = None
    plan: LaunchPlan | None = None


def auth_header(plan: LaunchPlan) -> bytes:
    """``Authorization: Bearer`` for a plan naming an API key variable, read now; b"" else."""
    return bearer(plan.api_key_env)


def listed_names(body: bytes) -> set[str]:
    """Model names in an OpenAI ``/v1/models`` answer (``data[].id``) or Ollama's
    ``/api/ps``/``/api/tags`` (``models[].name`` and ``.model``); empty when unreadable."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return set()
    if not isinstance(data, dict):
        return set()
    names: set[str] = set()
    for key, fields in (("data", ("id",)), ("models", ("name", "model"))):
        entries = data.get(key)
        if isinstance(entries, list):
            for entry in entries:
                if isinstance(entry, dict):
                    names.update(str(entry[f]) for f in fields if isinstance(entry.get(f), str))
    return names


def _is_sleeping(body: bytes) -> bool:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return True
    return bool(data.get("is_sleeping", True)) if isinstance(data, dict) else True


def _with_tail(message: str, tail: tuple[str, ...]) -> str:
    if not tail:
        return message
    return message + "\nlast log lines:\n" + "\n".join(f"  {line}" for line in tail)
