"""The gateway's logic: resolve the model, pick an instance, make it ready, forward, record.

One ``Gateway`` is built by the composition root and started by ``Services.start`` (after the
fleet; closed before it). It owns the per-instance health records and a routing snapshot
(``gateway.snapshot``), rebuilt only when the fleet reports a change or the catalog's changes,
so the hot path reads no store, no process table and parses the body once. The backend
transport (one pool) and the leases are the composition root's, shared with the fleet.

A request goes through (``handle``): the API key; the body (size-limited, parsed once);
resolution (``routing.resolve``); the candidates (``routing.fallback``); then for each
candidate in turn until one answers (``_attempt``): acquisition (``gateway.acquire``: create on
demand, lease, ready, slot), then one ``Exchange`` (``gateway.exchange``: send, first bytes,
read all or relay, close). A failure before the first byte reaches the client moves on to the
next candidate; after that a stream ends with an error event. The exchange reports its ending
to ``_ended``, which releases the lease, keeps the instance's health and records the figure.

What a response says served it: headers ``x-modelyard-model`` (model id),
``x-modelyard-instance`` (instance id) and ``x-modelyard-route`` (why) on every routed
response, streamed or not. A non-streamed JSON body's ``model`` is rewritten to the instance
id. A stream's events are passed through untouched: llama-server instances are launched with
their instance id as alias, so their events already name the instance; for other engines the
headers are the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import random
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from modelyard.catalog.catalog import Catalog
from modelyard.catalog.snapshot import CatalogSnapshot
from modelyard.errors import (
    BadRequest,
    FleetError,
    InstanceNotFound,
    ModelNotFound,
    ModelyardError,
    RateLimited,
    UpstreamError,
    UpstreamRefused,
    UpstreamTimeout,
)
from modelyard.figures.record import Outcome, RequestRecord, usage_from_sse_event
from modelyard.figures.service import Figures
from modelyard.fleet.fleet import Fleet, FleetEvent
from modelyard.fleet.instance import InstanceView
from modelyard.gateway.acquire import Acquirer, Held
from modelyard.gateway.answer import Answer, error_answer
from modelyard.gateway.auth import Keys
from modelyard.gateway.call import Call
from modelyard.gateway.deadlines import ReadDeadlines
from modelyard.gateway.errors import error_event
from modelyard.gateway.exchange import Ending, Exchange, for_upstream
from modelyard.gateway.listing import health_report, models_listing
from modelyard.gateway.protocol import PATHS, Endpoint, Parsed, outgoing, parse
from modelyard.gateway.snapshot import Snapshot, build_snapshot
from modelyard.routing import health as health_rules
from modelyard.routing.fallback import (
    Candidate,
    PlanConfig,
    ProfileRouting,
    candidates,
    reason_after,
    with_profile,
)
from modelyard.routing.health import HEALTHY, Health, HealthPolicy
from modelyard.routing.resolve import ResolveConfig, Resolved, refusal, resolve
from modelyard.settings import Settings
from modelyard.upstream import Transport

SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
BodyReader = Callable[[int], Awaitable[bytes]]
"""Reads the request body given the size limit; raises BodyTooLarge past it, BodyTimeout when
it is not all in within ``gateway.body_timeout_s`` (``Gateway.reads``)."""
_MODEL_FIELD = re.compile(rb'"model"\s*:\s*"(?:[^"\\]|\\.)*"')
_RETRYABLE = (UpstreamError, FleetError, RateLimited, InstanceNotFound)
_MAX_ERROR_BODY = 4096
_OUTCOMES = {
    Ending.OK: Outcome.OK,
    Ending.FAILED: Outcome.ERROR,
    Ending.CANCELLED: Outcome.CANCELLED,
}


class Gateway:
    """The /v1 gateway service. See the module docstring."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        fleet: Fleet,
        figures: Figures,
        transport: Transport,
    ) -> None:
        conf = settings.gateway
        self._conf = conf
        self._catalog = catalog
        self._fleet = fleet
        self._figures = figures
        self._transport = transport
        self._leases = fleet.leases
        self._keys = Keys(conf.api_keys)
        # who sees /health's details: any inference or admin key (everyone when none is set)
        self._insiders = Keys([*conf.api_keys, *settings.api.admin_keys])
        self._policy = HealthPolicy(
            failures_to_cooldown=conf.failures_to_cooldown,
            recent_window_s=conf.recent_window_s,
            recent_failures=conf.recent_failures,
            cooldown_base_s=conf.cooldown_base_s,
            cooldown_max_s=conf.cooldown_max_s,
        )
        self._base_plan = PlanConfig(
            strategy=conf.strategy,
            fallbacks=conf.fallbacks,
            policy=self._policy,
            resolve=ResolveConfig(
                default_model=conf.default_model,
                tier_defaults={str(k): v for k, v in conf.tier_defaults.items()},
                aliases=dict(conf.aliases),
            ),
        )
        self._plan_config = self._base_plan
        self._health: dict[str, Health] = {}
        self._ids = itertools.count(1)
        self._id_prefix = f"{int(time.time()):x}"
        self._turns = itertools.count()
        self._models = CatalogSnapshot((), version=-1)  # the catalog's, from start()
        self._snapshot: Snapshot | None = None
        self._acquirer = Acquirer(fleet, lambda: self._snapshot, self._current)
        self._serving = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unlisten: Callable[[], None] | None = None
        self._last_refresh = 0.0
        self._changes: dict[str, asyncio.Future[None]] = {}  # instance id -> its next event
        # How long a client may take to send a body, on /v1 and the other routes alike.
        self.reads = ReadDeadlines(conf.body_timeout_s)

    def apply_profile(self, routing: ProfileRouting | None) -> None:
        """Route with the active profile's defaults, fallbacks and strategy (None: settings
        only). Takes effect for the next request; no restart."""
        self._plan_config = with_profile(self._base_plan, routing)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the catalog, follow the fleet's changes, serve."""
        if self._serving:
            return
        await self.refresh_catalog()
        self._unlisten = self._fleet.add_listener(self._on_fleet_event)
        self._spawn(self._refresh_loop())
        self._serving = True

    async def aclose(self) -> None:
        """Stop following the fleet and the catalog."""
        self._serving = False
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.reads.aclose()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def refresh_catalog(self) -> None:
        """Read what another process (the CLI) changed in the catalog since (in a thread: it
        is SQLite), and route over the catalog's current snapshot."""
        self._last_refresh = time.monotonic()
        await asyncio.to_thread(self._catalog.reload)
        self.catalog_changed(self._catalog.snapshot())

    def catalog_changed(self, snapshot: CatalogSnapshot) -> None:
        """Route over ``snapshot`` from the next request (called on the loop)."""
        if snapshot is not self._models:
            self._models = snapshot
            self._snapshot = None

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self._conf.catalog_refresh_s)
            with contextlib.suppress(ModelyardError):
                await self.refresh_catalog()

    def _on_fleet_event(self, event: FleetEvent) -> None:
        self._snapshot = None
        if event.kind == "deleted":
            self._health.pop(event.instance_id, None)
        change = self._changes.pop(event.instance_id, None)
        if change is not None and not change.done():
            change.set_result(None)

    async def _next_change(self, instance_id: str) -> None:
        """Block until the fleet reports anything about ``instance_id`` (one future shared by
        every request waiting on it, shielded so that one cancelled leaves the others')."""
        change = self._changes.get(instance_id)
        if change is None or change.done():
            change = self._changes[instance_id] = asyncio.get_running_loop().create_future()
        await asyncio.shield(change)

    def _current(self) -> Snapshot:
        snap = self._snapshot
        if snap is None:
            views = self._fleet.instances(measure=False)
            snap = build_snapshot(self._models, views, self._fleet.memory.room())
            self._snapshot = snap
        return snap

    # -- reading ----------------------------------------------------------------------------

    def check_key(self, authorization: str | None) -> None:
        """Raises Unauthorized when keys are configured and none was presented."""
        self._keys.check(authorization)

    def listing(self) -> dict[str, Any]:
        """``GET /v1/models``: enabled models, their instances and the aliases."""
        return models_listing(self._current(), self._conf.aliases)

    def health(self) -> dict[str, Any]:
        """``GET /health``: status, and per instance its state, load and health."""
        return health_report(
            self._current(), self._health, self._policy, self._leases, serving=self._serving
        )

    def status(self) -> dict[str, Any]:
        """``GET /health`` for an anonymous caller: up (``ok``) or ``starting``, nothing else."""
        return {"status": "ok" if self._serving else "starting"}

    def shows_details(self, authorization: str | None) -> bool:
        """True when ``GET /health`` may show this caller the instances: no key is configured
        at all, or the header holds an inference or admin key."""
        return self._insiders.admits(authorization)

    # -- the hot path -----------------------------------------------------------------------

    async def handle(
        self, endpoint: Endpoint, authorization: str | None, read_body: BodyReader
    ) -> Answer:
        """Serve one ``/v1`` POST; ``read_body(limit)`` gives its body. Never raises for a
        failure: each one is an OpenAI-shaped error answer. Cancelled (the client went away):
        the backend request is closed and the call recorded as cancelled."""
        call = Call(
            f"{self._id_prefix}-{next(self._ids)}", endpoint, time.perf_counter(), time.time()
        )
        try:
            self._keys.check(authorization)
            parsed = parse(await read_body(self._conf.max_body_bytes), endpoint)
            call.stream = parsed.stream
            cands = await self._plan(parsed.model, call)
            if parsed.stream:
                return await self._stream(call, parsed, cands)
            return await self._complete(call, parsed, cands)
        except ModelyardError as exc:
            self._record(call, Outcome.ERROR, exc.status, exc.message)
            return error_answer(exc, call.headers())
        except asyncio.CancelledError:
            self._record(call, Outcome.CANCELLED, 499, None)
            raise

    async def _plan(self, name: str, call: Call) -> tuple[Candidate, ...]:
        snap = self._current()
        embedding = call.endpoint is Endpoint.EMBEDDINGS
        config = self._plan_config.resolve
        found = resolve(name, snap.view, config, embedding=embedding)
        if not isinstance(found, Resolved) and time.monotonic() - self._last_refresh > 1.0:
            await self.refresh_catalog()  # a model added since the last refresh
            snap = self._current()
            found = resolve(name, snap.view, config, embedding=embedding)
        if not isinstance(found, Resolved):
            hint = f"; closest: {', '.join(found.close)}" if found.close else ""
            raise ModelNotFound(f"{found.message}{hint}", param="model", close=list(found.close))
        # Before anything starts: a chat model asked for embeddings (or the reverse) would
        # cold-start the wrong server only to fail (llama-server answers 501).
        problem = refusal(snap.view.models[found.model_id], snap.view, embedding=embedding)
        if problem is not None:
            raise BadRequest(problem, param="model")
        call.model_id, call.route = found.model_id, found.reason
        return candidates(
            found,
            snap.view,
            self._health,
            self._plan_config,
            now=time.monotonic(),
            turn=next(self._turns),
            dice=random.random(),
            load=self._leases.counts,
        )

    async def _complete(self, call: Call, parsed: Parsed, cands: tuple[Candidate, ...]) -> Answer:
        exchange, body = await self._attempts(call, parsed, cands, read_all=True)
        status = exchange.status
        if status == 200 and exchange.content_type().startswith(b"application/json"):
            model = json.dumps(call.instance_id).encode()
            body = _MODEL_FIELD.sub(lambda _: b'"model":' + model, body, count=1)
        headers = exchange.headers
        headers.extend(call.headers())
        return Answer(status, headers, body, after=lambda: self._finish(call, status, body))

    def _finish(self, call: Call, status: int, body: bytes) -> None:
        """After the answer has gone: its token counts and its record, off the client's path."""
        if status < 400:
            found = usage_from_sse_event(body)
            if found is not None:
                call.usage = found
            self._record(call, Outcome.OK, status, None)
        else:
            self._record(call, Outcome.ERROR, status, _error_message(body[:_MAX_ERROR_BODY]))

    async def _stream(self, call: Call, parsed: Parsed, cands: tuple[Candidate, ...]) -> Answer:
        task = asyncio.ensure_future(self._attempts(call, parsed, cands, read_all=False))
        try:
            done, _ = await asyncio.wait({task}, timeout=self._conf.keepalive_s)
        except BaseException:
            task.cancel()
            raise
        if not done:  # loading, or a long prompt: commit now and keep the client waiting
            waiting = _Waiting(self, call, task)
            return Answer(200, [*SSE_HEADERS, *call.headers()], stream=waiting)
        exchange, _ = task.result()
        headers = exchange.headers
        headers.extend(call.headers())
        if exchange.status >= 400:  # the backend refused the request: its answer, not a stream
            try:
                body = await exchange.read_all()
            finally:
                await exchange.aclose()
            self._record(
                call, Outcome.ERROR, exchange.status, body[:200].decode("utf-8", "replace")
            )
            return Answer(exchange.status, headers, body)
        call.relaying = True
        return Answer(exchange.status, headers, stream=exchange)

    async def _attempts(
        self, call: Call, parsed: Parsed, cands: tuple[Candidate, ...], *, read_all: bool
    ) -> tuple[Exchange, bytes]:
        """Try the candidates in order until one answers. Raises the last failure."""
        if not cands:
            raise ModelNotFound(f"no instance can serve '{parsed.model}'", param="model")
        last: ModelyardError | None = None
        failed = ""
        tried = cands[: self._conf.max_attempts]
        for number, cand in enumerate(tried, 1):
            if last is not None:
                call.route = reason_after(cand, failed, last.message.splitlines()[0][:160])
            call.instance_id = cand.instance_id
            try:
                return await self._attempt(call, parsed, cand, read_all, number == len(tried))
            except _RETRYABLE as exc:
                last, failed = exc, call.instance_id or cand.model_id
        assert last is not None
        raise last

    async def _attempt(
        self, call: Call, parsed: Parsed, cand: Candidate, read_all: bool, last: bool
    ) -> tuple[Exchange, bytes]:
        """Acquire ``cand``, send, wait for the first bytes. With ``read_all``, also read the
        whole answer and close the exchange; otherwise the caller relays and closes it.
        ``last``: no candidate is left after this one (see ``_resend``)."""
        try:
            held = await self._acquirer.acquire(cand, call)
        except FleetError as exc:
            if call.instance_id is not None:
                self._failed(call.instance_id, exc.message.splitlines()[0])
            raise
        view = held.view
        if cand.probe:
            record = self._health.get(view.id, HEALTHY)
            self._health[view.id] = health_rules.begin_probe(record, time.monotonic())
        try:
            try:
                first_byte_s = self._conf.timeouts.first_byte_s
                exchange = await self._send(call, parsed, held, read_all, first_byte_s)
            except UpstreamRefused:
                if not last:
                    raise
                exchange = await self._resend(call, parsed, held, read_all)
        except BaseException as exc:
            held.release()
            if isinstance(exc, UpstreamError | FleetError):
                self._failed(view.id, exc.message.splitlines()[0])
            raise
        if call.ttft_s is None:
            call.ttft_s = time.perf_counter() - call.started
        try:
            if exchange.status >= 500:
                text = (await exchange.read_all())[:_MAX_ERROR_BODY]
                exchange.failure = f"{view.id} answered {exchange.status}: {_error_message(text)}"
                raise UpstreamError(exchange.failure)
            body = await exchange.read_all() if read_all else b""
        except BaseException:
            await exchange.aclose()
            raise
        if read_all:
            await exchange.aclose()
        return exchange, body

    def _send(
        self, call: Call, parsed: Parsed, held: Held, read_all: bool, first_byte_s: float
    ) -> Coroutine[Any, Any, Exchange]:
        """``Exchange.open`` to the held instance (a coroutine: no frame of its own on the hot
        path). Raises as ``Exchange.open``."""
        view = held.view
        body = outgoing(parsed, view.config.system_prompt, self._max_tokens(view.model_id))
        headers = b""
        if view.served_name is not None or view.api_key_env is not None:  # not llama-server
            body, headers = for_upstream(body, view.served_name, view.api_key_env)
        return Exchange.open(
            self._transport,
            _url(view.base_url, PATHS[parsed.endpoint]),
            body,
            headers=headers,
            first_byte_s=first_byte_s,
            idle_s=self._conf.timeouts.idle_s,
            on_end=functools.partial(self._ended, call, held),
            on_chunk=None if read_all else call.on_chunk,
        )

    async def _resend(self, call: Call, parsed: Parsed, held: Held, read_all: bool) -> Exchange:
        """The last candidate refused the connection: its server is gone (crashed, killed) or
        not listening (wedged), and the fleet may not have noticed yet. Nothing was sent, so
        wait, within ``first_byte_s`` of the refusal, for the fleet to have the instance
        serving again and send once more (the next request after a crash got a bare 502
        "connect refused"). Raises UpstreamTimeout at the deadline, the fleet's failure when
        the restart fails (StartFailed...), or as ``Exchange.open``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._conf.timeouts.first_byte_s
        while True:
            call.loading = True
            held.view = await self._serving_again(held.view, deadline)
            call.loading = False
            try:
                left_s = max(0.0, deadline - loop.time())
                return await self._send(call, parsed, held, read_all, left_s)
            except UpstreamRefused:
                continue

    async def _serving_again(self, refused: InstanceView, deadline: float) -> InstanceView:
        """Block until the instance that refused a connection is serving again: a new process
        (ready), or the same one once the fleet has restarted it, by ``deadline`` (loop
        time). Waits on the fleet's events, never polls. Raises UpstreamTimeout past the
        deadline, InstanceNotFound (deleted meanwhile), or as ``Fleet.ensure_ready``."""
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    view = self._current().instances.get(refused.id)  # rebuilt on each event
                    if view is None:
                        raise InstanceNotFound(f"instance {refused.id} was deleted")
                    if view.state != "ready":
                        return await self._fleet.ensure_ready(refused.id)
                    if view.pid is not None and view.pid != refused.pid:
                        return view  # restarted since the snapshot the request was routed on
                    await self._next_change(refused.id)  # the exit not seen yet
        except TimeoutError:
            raise UpstreamTimeout(
                f"{refused.id} refused the connection and was not serving again within "
                f"{self._conf.timeouts.first_byte_s:g}s"
            ) from None

    def _max_tokens(self, model_id: str) -> int | None:
        """The ``max_tokens`` sent when the client gives none (settings: per model, else
        the global default)."""
        by_model = self._conf.default_max_tokens_by_model
        if model_id in by_model:
            return by_model[model_id]
        return self._conf.default_max_tokens

    def _ended(self, call: Call, held: Held, exchange: Exchange) -> None:
        """An exchange closed: release its lease, keep its instance's health, and record a
        relayed stream (a whole answer is recorded once it has been sent: ``_finish``)."""
        held.release()
        instance_id = held.view.id
        if exchange.failure is not None:
            self._failed(instance_id, exchange.failure)
        elif exchange.ending is Ending.OK:
            self._health.pop(instance_id, None)
        if call.relaying:
            outcome = _OUTCOMES[exchange.ending]
            status = 502 if outcome is Outcome.ERROR else 200
            self._record(call, outcome, status, exchange.failure)

    # -- health and figures -----------------------------------------------------------------

    def _failed(self, instance_id: str, why: str) -> None:
        record = self._health.get(instance_id, HEALTHY)
        self._health[instance_id] = health_rules.on_failure(
            record, time.monotonic(), self._policy, why
        )

    def _record(self, call: Call, outcome: Outcome, status: int, error: str | None) -> None:
        self._figures.record(
            RequestRecord(
                request_id=call.request_id,
                model_id=call.model_id,
                instance_id=call.instance_id,
                route=call.route,
                endpoint=call.endpoint,
                started_at=call.started_at,
                ttft_s=call.ttft_s,
                latency_s=time.perf_counter() - call.started,
                tokens_in=call.usage[0],
                tokens_out=call.usage[1],
                outcome=outcome,
                status=status,
                error=error,
                stream=call.stream,
            )
        )


class _Waiting:
    """A committed stream whose backend is not answering yet: SSE comments every
    ``keepalive_s`` until it does, then its exchange relayed (or one error event)."""

    def __init__(
        self, gateway: Gateway, call: Call, task: asyncio.Future[tuple[Exchange, bytes]]
    ) -> None:
        self._gateway = gateway
        self._call = call
        self._task = task
        self._exchange: Exchange | None = None
        self._pieces: AsyncGenerator[bytes, None] | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        self._pieces = self._wait()
        return self._pieces

    async def _wait(self) -> AsyncGenerator[bytes, None]:
        task, call = self._task, self._call
        while not task.done():
            done, _ = await asyncio.wait({task}, timeout=self._gateway._conf.keepalive_s)
            if not done:
                yield b": loading model...\n\n" if call.loading else b": waiting...\n\n"
        try:
            exchange, _ = task.result()
        except ModelyardError as exc:
            self._gateway._record(call, Outcome.ERROR, exc.status, exc.message)
            yield error_event(exc)
            return
        self._exchange = exchange
        call.relaying = True
        async for chunk in exchange:
            yield chunk

    async def aclose(self) -> None:
        if self._pieces is not None:
            await self._pieces.aclose()
        task = self._task
        if not task.done():
            task.cancel()  # its own cleanup releases what it held
        elif self._exchange is None and not task.cancelled() and task.exception() is None:
            self._exchange = task.result()[0]
            self._call.relaying = True
        if self._exchange is not None:
            await self._exchange.aclose()


def _url(base_url: str, path: str) -> str:
    base = base_url.rstrip("/")
    return base + path[3:] if base.endswith("/v1") else base + path


def _error_message(body: bytes) -> str:
    try:
        data = json.loads(body)
        message = data["error"]["message"] if isinstance(data["error"], dict) else data["error"]
        return str(message)[:200]
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")
