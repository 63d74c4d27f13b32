"""The gateway's logic: resolve the model, pick an instance, make it ready, forward, record.

One ``Gateway`` is built by the composition root and started in the app's lifespan
(``await gateway.start()`` after the fleet, ``await gateway.aclose()`` before it). It owns
the backend connection pool (``upstream.UpstreamPool``), the per-instance health records, the
admission gates and a routing snapshot. The snapshot (catalog models, instances, the name
index) is rebuilt only when the fleet reports a change or the catalog refresh finds one, so the
hot path reads no store, no process table and parses the body once.

A request goes through: the API key; the body (size-limited, parsed once); resolution
(``routing.resolve``); the candidates (``routing.fallback``); then for each candidate in turn
until one answers: a fleet lease (so an idle unload cannot slip in), ``ensure_ready`` when it
is not serving (a new on-demand instance is created once per cold model however many
requests wait), an admission slot, the backend's first bytes. A failure before the first
byte reaches the client moves on to the next candidate; after that a stream ends with an
error event.

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
import itertools
import json
import random
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio

from modelyard.catalog.catalog import Catalog
from modelyard.catalog.model import Model
from modelyard.errors import (
    FleetError,
    InstanceNotFound,
    ModelNotFound,
    ModelyardError,
    RateLimited,
    UpstreamError,
)
from modelyard.figures.record import RequestRecord, usage_from_sse_event
from modelyard.figures.service import Figures
from modelyard.fleet.fleet import Fleet, FleetEvent
from modelyard.fleet.instance import InstanceConfig, InstanceView
from modelyard.fleet.memory import read_inventory
from modelyard.gateway.admission import Admission
from modelyard.gateway.answer import Answer, Headers, error_answer
from modelyard.gateway.auth import Keys
from modelyard.gateway.errors import error_event
from modelyard.gateway.protocol import PATHS, Endpoint, Parsed, parse, with_persona
from modelyard.gateway.relay import Upstream, open_upstream, relay
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
from modelyard.routing.resolve import ResolveConfig, Resolved, resolve
from modelyard.routing.view import InstanceInfo, RoutingView, build, build_index
from modelyard.settings import Settings
from modelyard.upstream import UpstreamPool

SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
BodyReader = Callable[[int], Awaitable[bytes]]
"""Reads the request body given the size limit; raises BodyTooLarge past it."""
_MODEL_FIELD = re.compile(rb'"model"\s*:\s*"(?:[^"\\]|\\.)*"')
_RETRYABLE = (UpstreamError, FleetError, RateLimited, InstanceNotFound)
_MAX_ERROR_BODY = 4096


@dataclass(frozen=True)
class _Snapshot:
    """What routing reads, rebuilt on change only."""

    view: RoutingView
    instances: Mapping[str, InstanceView]


@dataclass
class _Call:
    """What one request has learnt so far; becomes its RequestRecord."""

    request_id: str
    endpoint: Endpoint
    started: float
    started_at: float
    stream: bool = False
    model_id: str | None = None
    instance_id: str | None = None
    route: str = ""
    ttft_s: float | None = None
    usage: tuple[int | None, int | None] = (None, None)
    loading: bool = False

    def headers(self) -> Headers:
        out = []
        if self.model_id:
            out.append((b"x-modelyard-model", _header_safe(self.model_id).encode()))
        if self.instance_id:
            out.append((b"x-modelyard-instance", _header_safe(self.instance_id).encode()))
        if self.route:
            out.append((b"x-modelyard-route", _header_safe(self.route).encode()))
        return out

    def on_chunk(self, chunk: bytes) -> None:
        found = usage_from_sse_event(chunk)
        if found is not None:
            self.usage = found


@dataclass
class _Opened:
    """A backend answering: its response, the instance and what to release when done."""

    upstream: Upstream
    view: InstanceView
    stack: AsyncExitStack
    probe: bool = False

    async def close(self) -> None:
        # No cancel shield: every exit on the stack is synchronous underneath (lease, slot,
        # in-flight count, the connection's release), so a cancellation cannot land half-way;
        # an anyio shield here cost about a tenth of a relayed request's CPU.
        await self.stack.aclose()


@dataclass
class _GatewayState:
    health: dict[str, Health] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    creating: dict[str, asyncio.Task[str]] = field(default_factory=dict)


class Gateway:
    """The /v1 gateway service. See the module docstring."""

    def __init__(
        self, settings: Settings, catalog: Catalog, fleet: Fleet, figures: Figures
    ) -> None:
        conf = settings.gateway
        self._settings = settings
        self._conf = conf
        self._catalog = catalog
        self._fleet = fleet
        self._figures = figures
        self._keys = Keys(conf.api_keys)
        self._admission = Admission(conf.queue_size, conf.retry_after_s)
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
        self._state = _GatewayState()
        self._ids = itertools.count(1)
        self._id_prefix = f"{int(time.time()):x}"
        self._turns = itertools.count()
        self._models: dict[str, Model] = {}
        self._budget: int | None = None
        self._snapshot: _Snapshot | None = None
        self._pool: UpstreamPool | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unlisten: Any = None
        self._last_refresh = 0.0

    def apply_profile(self, routing: ProfileRouting | None) -> None:
        """Route with the active profile's defaults, fallbacks and strategy (None: settings
        only). Takes effect for the next request; no restart."""
        self._plan_config = with_profile(self._base_plan, routing)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the backend pool, read the catalog, follow the fleet's changes."""
        if self._pool is not None:
            return
        self._pool = UpstreamPool(self._conf.timeouts.connect_s)
        await self.refresh_catalog()
        self._unlisten = self._fleet.add_listener(self._on_fleet_event)
        self._spawn(self._refresh_loop())

    async def aclose(self) -> None:
        """Stop following the fleet and the catalog; close the backend pool."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def refresh_catalog(self) -> None:
        """Read the catalog (in a thread: it is SQLite) and the memory budget."""
        self._last_refresh = time.monotonic()
        models, budget = await asyncio.to_thread(self._read_catalog)
        if models != self._models or budget != self._budget:
            self._models, self._budget = models, budget
            self._snapshot = None

    def _read_catalog(self) -> tuple[dict[str, Model], int | None]:
        models = {m.id: m for m in self._catalog.models()}
        try:
            inventory = read_inventory(self._settings.memory)
        except Exception:  # an unreadable GPU must not stop routing
            return models, None
        budgets = [inventory.budget(None)] + [inventory.budget(d.index) for d in inventory.devices]
        return models, max(budgets)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self._conf.catalog_refresh_s)
            with contextlib.suppress(ModelyardError):
                await self.refresh_catalog()

    def _on_fleet_event(self, event: FleetEvent) -> None:
        self._snapshot = None
        if event.kind == "deleted":
            self._state.health.pop(event.instance_id, None)

    def _current(self) -> _Snapshot:
        snap = self._snapshot
        if snap is None:
            views = {v.id: v for v in self._fleet.instances()}
            infos = [_info(v) for v in views.values()]
            index = build_index(self._models.values(), infos)
            view = build(self._models, infos, self._budget, index)
            snap = self._snapshot = _Snapshot(view, views)
        return snap

    # -- reading ----------------------------------------------------------------------------

    def check_key(self, authorization: str | None) -> None:
        """Raises Unauthorized when keys are configured and none was presented."""
        self._keys.check(authorization)

    def listing(self) -> dict[str, Any]:
        """``GET /v1/models``: enabled models, their instances and the aliases."""
        snap = self._current()
        data: list[dict[str, Any]] = []
        for model in snap.view.models.values():
            if not (model.enabled and model.error is None):
                continue
            instances = snap.view.by_model.get(model.id, ())
            data.append(_model_entry(model, [i.id for i in instances]))
            for info in instances:
                data.append(_instance_entry(info))
        for alias, target in self._conf.aliases.items():
            data.append(_entry(alias, {"kind": "alias", "target": target}))
        return {"object": "list", "data": data}

    def health(self) -> dict[str, Any]:
        """``GET /health``: status, and per instance its state, load and health."""
        now = time.monotonic()
        snap = self._current()
        instances = {}
        for info in snap.view.instances:
            record = self._state.health.get(info.id, HEALTHY)
            instances[info.id] = {
                "state": info.state,
                "in_flight": self._state.in_flight.get(info.id, 0),
                "queued": self._admission.queued(info.id),
                "health": health_rules.verdict(record, now, self._policy),
                "score": round(health_rules.score(record, now, self._policy), 3),
                "cooldown_s": round(max(0.0, record.cooldown_until - now), 3),
                "last_error": record.last_error,
            }
        return {
            "status": "ok" if self._pool is not None else "starting",
            "models": sum(1 for m in snap.view.models.values() if m.enabled and not m.error),
            "instances": instances,
        }

    # -- the hot path -----------------------------------------------------------------------

    async def handle(
        self, endpoint: Endpoint, authorization: str | None, read_body: BodyReader
    ) -> Answer:
        """Serve one ``/v1`` POST; ``read_body(limit)`` gives its body. Never raises for a
        failure: each one is an OpenAI-shaped error answer. Cancelled (the client went away):
        the backend request is closed and the call recorded as cancelled."""
        call = _Call(
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
            self._record(call, "error", exc.status, exc.message)
            return error_answer(exc, call.headers())
        except asyncio.CancelledError:
            self._record(call, "cancelled", 499, None)
            raise

    async def _plan(self, name: str, call: _Call) -> tuple[Candidate, ...]:
        snap = self._current()
        found = resolve(name, snap.view, self._plan_config.resolve)
        if not isinstance(found, Resolved) and time.monotonic() - self._last_refresh > 1.0:
            await self.refresh_catalog()  # a model added since the last refresh
            snap = self._current()
            found = resolve(name, snap.view, self._plan_config.resolve)
        if not isinstance(found, Resolved):
            hint = f"; closest: {', '.join(found.close)}" if found.close else ""
            raise ModelNotFound(f"{found.message}{hint}", param="model", close=list(found.close))
        call.model_id, call.route = found.model_id, found.reason
        return candidates(
            found,
            snap.view,
            self._state.health,
            self._plan_config,
            now=time.monotonic(),
            turn=next(self._turns),
            dice=random.random(),
            load=self._state.in_flight,
        )

    async def _complete(self, call: _Call, parsed: Parsed, cands: tuple[Candidate, ...]) -> Answer:
        opened, body = await self._attempts(call, parsed, cands, read_all=True)
        up = opened.upstream
        status = up.status
        if status == 200 and up.content_type().startswith(b"application/json"):
            model = json.dumps(opened.view.id).encode()
            body = _MODEL_FIELD.sub(lambda _: b'"model":' + model, body, count=1)
        headers = up.headers
        headers.extend(call.headers())
        return Answer(status, headers, body, after=lambda: self._finish(call, status, body))

    def _finish(self, call: _Call, status: int, body: bytes) -> None:
        """After the answer has gone: its token counts and its record, off the client's path."""
        if status < 400:
            found = usage_from_sse_event(body)
            if found is not None:
                call.usage = found
            self._record(call, "ok", status, None)
        else:
            self._record(call, "error", status, _error_message(body[:_MAX_ERROR_BODY]))

    async def _stream(self, call: _Call, parsed: Parsed, cands: tuple[Candidate, ...]) -> Answer:
        task = asyncio.ensure_future(self._attempts(call, parsed, cands, read_all=False))
        try:
            done, _ = await asyncio.wait({task}, timeout=self._conf.keepalive_s)
        except BaseException:
            task.cancel()
            raise
        if not done:  # loading, or a long prompt: commit now and keep the client waiting
            return Answer(200, [*SSE_HEADERS, *call.headers()], stream=_Waiting(self, call, task))
        opened, _ = task.result()
        return await self._start_relay(call, opened)

    async def _start_relay(self, call: _Call, opened: _Opened) -> Answer:
        up = opened.upstream
        headers = up.headers
        headers.extend(call.headers())
        if up.status >= 400:  # the backend refused the request: its answer, not a stream
            try:
                body = await up.read_rest(self._conf.timeouts.idle_s)
            finally:
                await opened.close()
            self._record(call, "error", up.status, body[:200].decode("utf-8", "replace"))
            return Answer(up.status, headers, body)
        return Answer(up.status, headers, stream=_Relayed(self, call, opened))

    async def _end_relay(self, call: _Call, opened: _Opened, outcome: str) -> None:
        """A stream's end (whole, broken, or its client gone): release and record."""
        up = opened.upstream
        await opened.close()
        if up.failure is not None:
            self._failed(opened.view.id, up.failure)
        elif outcome == "ok":
            self._succeeded(opened.view.id)
        self._record(call, outcome, 200 if outcome != "error" else 502, up.failure)

    async def _attempts(
        self, call: _Call, parsed: Parsed, cands: tuple[Candidate, ...], *, read_all: bool
    ) -> tuple[_Opened, bytes]:
        """Try the candidates in order until one answers. Raises the last failure."""
        if not cands:
            raise ModelNotFound(f"no instance can serve '{parsed.model}'", param="model")
        last: ModelyardError | None = None
        failed = ""
        for cand in cands[: self._conf.max_attempts]:
            if last is not None:
                call.route = reason_after(cand, failed, last.message.splitlines()[0][:160])
            call.instance_id = cand.instance_id
            try:
                return await self._open(call, parsed, cand, read_all)
            except _RETRYABLE as exc:
                last, failed = exc, call.instance_id or cand.model_id
        assert last is not None
        raise last

    async def _open(
        self, call: _Call, parsed: Parsed, cand: Candidate, read_all: bool
    ) -> tuple[_Opened, bytes]:
        """Make ``cand`` ready, hold its lease and slot, send, wait for the first bytes.
        With ``read_all``, also read the whole answer and release everything."""
        stack = AsyncExitStack()
        instance_id = cand.instance_id
        try:
            if instance_id is None:
                call.loading = True
                instance_id = await self._create_for(cand.model_id)
            call.instance_id = instance_id
            await stack.enter_async_context(self._fleet.lease(instance_id))
            # With the lease held no unload can begin; a snapshot still current (no fleet
            # event since it was built) says whether one had begun already.
            snap = self._snapshot
            view = snap.instances.get(instance_id) if snap is not None else None
            if view is None or view.state != "ready":
                call.loading = True
                try:
                    view = await self._fleet.ensure_ready(instance_id)
                except FleetError as exc:
                    self._failed(instance_id, exc.message.splitlines()[0])
                    raise
                call.loading = False
            await stack.enter_async_context(self._admission.slot(instance_id, self._cap(view)))
            self._hold(instance_id, stack)
            if cand.probe:
                record = self._state.health.get(instance_id, HEALTHY)
                self._state.health[instance_id] = health_rules.begin_probe(record, time.monotonic())
            url = _url(view.base_url, PATHS[parsed.endpoint])
            body = with_persona(parsed, view.config.system_prompt)
            assert self._pool is not None, "the gateway is not started"
            try:
                upstream = await open_upstream(
                    self._pool, url, body, self._conf.timeouts.first_byte_s
                )
            except UpstreamError as exc:
                self._failed(instance_id, exc.message)
                raise
            stack.push_async_callback(upstream.aclose)
            if call.ttft_s is None:
                call.ttft_s = time.perf_counter() - call.started
            if upstream.status >= 500:
                text = (await upstream.read_rest(self._conf.timeouts.idle_s))[:_MAX_ERROR_BODY]
                why = f"{instance_id} answered {upstream.status}: {_error_message(text)}"
                self._failed(instance_id, why)
                raise UpstreamError(why)
            opened = _Opened(upstream, view, stack, cand.probe)
            if not read_all:
                return opened, b""
            try:
                body = await upstream.read_rest(self._conf.timeouts.idle_s)
            except UpstreamError as exc:
                self._failed(instance_id, exc.message)
                raise
            self._succeeded(instance_id)
            await opened.close()
            return opened, body
        except BaseException:
            with anyio.CancelScope(shield=True):
                await stack.aclose()
            raise

    def _hold(self, instance_id: str, stack: AsyncExitStack) -> None:
        counts = self._state.in_flight
        counts[instance_id] = counts.get(instance_id, 0) + 1

        def release() -> None:
            left = counts.get(instance_id, 1) - 1
            if left:
                counts[instance_id] = left
            else:
                counts.pop(instance_id, None)

        stack.callback(release)

    def _cap(self, view: InstanceView) -> int | None:
        parallel = view.config.engine_args.parallel
        if parallel is not None:
            return parallel
        model = self._models.get(view.model_id)
        if model is not None and model.engine == "llamacpp":
            return self._settings.llamacpp.default_parallel
        return None

    async def _create_for(self, model_id: str) -> str:
        """An instance of ``model_id`` to start: one new on-demand instance however many
        requests ask at once (they all wait on the same creation)."""
        task = self._state.creating.get(model_id)
        if task is None:
            task = asyncio.ensure_future(self._create(model_id))
            self._state.creating[model_id] = task
            task.add_done_callback(lambda t: self._created(model_id, t))
        return await asyncio.shield(task)

    def _created(self, model_id: str, task: asyncio.Task[str]) -> None:
        self._state.creating.pop(model_id, None)
        if not task.cancelled():
            task.exception()  # retrieved here, so a creation nobody waits for is not logged

    async def _create(self, model_id: str) -> str:
        existing = self._current().view.by_model.get(model_id)
        if existing:
            return existing[0].id
        created = await self._fleet.create(
            model_id, InstanceConfig(on_demand=True), actor="gateway"
        )
        return created[0].id

    # -- health and figures -----------------------------------------------------------------

    def _failed(self, instance_id: str, why: str) -> None:
        record = self._state.health.get(instance_id, HEALTHY)
        self._state.health[instance_id] = health_rules.on_failure(
            record, time.monotonic(), self._policy, why
        )

    def _succeeded(self, instance_id: str) -> None:
        self._state.health.pop(instance_id, None)

    def _record(self, call: _Call, outcome: str, status: int, error: str | None) -> None:
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
                outcome=outcome,  # type: ignore[arg-type]
                status=status,
                error=error,
                stream=call.stream,
            )
        )


class _Relayed:
    """A streamed answer's body from an answering backend. ``aclose`` releases the backend
    and records the outcome, whether or not the body was iterated (a client can go away
    before the first piece, and a generator never started runs no ``finally``)."""

    def __init__(self, gateway: Gateway, call: _Call, opened: _Opened) -> None:
        self._gateway = gateway
        self._call = call
        self._opened = opened
        self._outcome = "cancelled"
        self._pieces: AsyncGenerator[bytes, None] | None = None
        self._closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        self._pieces = self._relay()
        return self._pieces

    async def _relay(self) -> AsyncGenerator[bytes, None]:
        up = self._opened.upstream
        idle_s = self._gateway._conf.timeouts.idle_s
        async for chunk in relay(up, idle_s, self._call.on_chunk):
            yield chunk
        self._outcome = "ok" if up.failure is None else "error"

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pieces is not None:
            await self._pieces.aclose()
        await self._gateway._end_relay(self._call, self._opened, self._outcome)


class _Waiting:
    """A committed stream whose backend is not answering yet: SSE comments every
    ``keepalive_s`` until it does, then its relay (or one error event)."""

    def __init__(
        self, gateway: Gateway, call: _Call, task: asyncio.Future[tuple[_Opened, bytes]]
    ) -> None:
        self._gateway = gateway
        self._call = call
        self._task = task
        self._relayed: _Relayed | None = None
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
            opened, _ = task.result()
        except ModelyardError as exc:
            self._gateway._record(call, "error", exc.status, exc.message)
            yield error_event(exc)
            return
        self._relayed = _Relayed(self._gateway, call, opened)
        async for chunk in self._relayed:
            yield chunk

    async def aclose(self) -> None:
        if self._pieces is not None:
            await self._pieces.aclose()
        task = self._task
        if not task.done():
            task.cancel()  # its own cleanup releases what it held
        elif self._relayed is None and not task.cancelled() and task.exception() is None:
            self._relayed = _Relayed(self._gateway, self._call, task.result()[0])
        if self._relayed is not None:
            await self._relayed.aclose()


def _info(view: InstanceView) -> InstanceInfo:
    return InstanceInfo(
        id=view.id,
        model_id=view.model_id,
        state=view.state,
        in_flight=view.in_flight,
        display_name=view.config.display_name,
        persona=bool(view.config.system_prompt),
        on_demand=view.config.on_demand,
    )


def _url(base_url: str, path: str) -> str:
    base = base_url.rstrip("/")
    return base + path[3:] if base.endswith("/v1") else base + path


def _header_safe(text: str) -> str:
    if text.isascii() and text.isprintable():
        return text
    return "".join(c if c.isascii() and c.isprintable() else "?" for c in text)


def _error_message(body: bytes) -> str:
    try:
        data = json.loads(body)
        message = data["error"]["message"] if isinstance(data["error"], dict) else data["error"]
        return str(message)[:200]
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")


def _entry(name: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": 0,
        "owned_by": "modelyard",
        "modelyard": extra,
    }


_MODEL_FIELDS = (
    "display_name",
    "engine",
    "family",
    "parameters_b",
    "quantization",
    "context_length",
    "tier",
    "thinking",
    "coder",
    "vision",
    "embedding",
    "tools",
    "roles",
    "ollama_name",
    "memory_bytes",
)


def _model_entry(model: Model, instances: list[str]) -> dict[str, Any]:
    extra: dict[str, Any] = {"kind": "model"}
    extra.update({name: getattr(model, name) for name in _MODEL_FIELDS})
    extra["instances"] = instances
    return _entry(model.id, extra)


def _instance_entry(info: InstanceInfo) -> dict[str, Any]:
    return _entry(
        info.id,
        {
            "kind": "instance",
            "model": info.model_id,
            "state": info.state,
            "display_name": info.display_name,
            "persona": info.persona,
        },
    )
