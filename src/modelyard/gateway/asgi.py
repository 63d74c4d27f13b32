"""The ``/v1`` POSTs as plain ASGI, ahead of FastAPI's router: the gateway's hot path.

``FastPathApp`` is the app: a POST to ``/v1/chat/completions``, ``/v1/completions`` or
``/v1/embeddings`` goes straight to ``Gateway.handle`` with the raw body; every other request
goes on to FastAPI (``GET /v1/models``, ``/api``, the dashboard, ``/metrics``, a browser's
CORS preflight ``OPTIONS /v1/...``, and wrong methods on these paths, which the router answers
405 in OpenAI's shape). No route matching, no Request or Response objects: the body is read
from ``receive`` within the size limit, and the answer's headers are already ASGI byte pairs.
With ``gateway.cors_origins`` set, every ``/v1`` answer to an allowed origin gets its CORS
headers here (``gateway.cors``), whichever of the two serves it.

Once the body is in, a watcher waits on ``receive`` for the client to go away and then
cancels the request, streaming or not, so the backend request is closed (``finally`` blocks
release its connection, its admission slot and its fleet lease).

Reading a body is bounded in time (``gateway.body_timeout_s``, for the whole body): a client
that declares more than it sends, or stalls, gets a 408 and the connection is closed (it held
a task and its connection for as long as it liked). The other routes read theirs through
``_BodyDeadline``, the same bound.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send

from modelyard.errors import BodyTimeout, BodyTooLarge
from modelyard.gateway.answer import Answer
from modelyard.gateway.cors import Cors
from modelyard.gateway.deadlines import ReadDeadlines
from modelyard.gateway.protocol import PATHS, Endpoint
from modelyard.gateway.serving import Gateway

ENDPOINTS: dict[str, Endpoint] = {path: endpoint for endpoint, path in PATHS.items()}
WATCH_AFTER_S = 0.02
CLOSE = (b"connection", b"close")


class _ClientGone(Exception):
    """The client disconnected before its body was in."""


class FastPathApp(FastAPI):
    """A FastAPI app whose three ``/v1`` POSTs go straight to ``gateway``, ahead of FastAPI's
    own layers (its OpenTelemetry hooks, which read the environment on every request, its
    middleware stack and its router); everything else is FastAPI's as usual."""

    def __init__(self, *, gateway: Gateway, cors: Cors | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.gateway = gateway
        self.cors = cors if cors is not None and cors.enabled else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # CORS only when configured, so the hot path pays one test; a preflight (OPTIONS)
            # is answered by the router's route, which adds its own headers.
            cors = self.cors
            if cors is not None and scope["method"] != "OPTIONS" and scope["path"][:4] == "/v1/":
                send = cors.wrap(scope, send)
            if scope["method"] == "POST":
                endpoint = ENDPOINTS.get(scope["path"])
                if endpoint is not None:
                    await serve(self.gateway, endpoint, scope, receive, send)
                    return
            bounded = _BodyDeadline(receive, self.gateway.reads)
            await super().__call__(scope, bounded.receive, send)
            return
        await super().__call__(scope, receive, send)


class GatewayEndpoint:
    """One endpoint as an ASGI app, for a router that matched it some other way."""

    def __init__(self, gateway: Gateway, endpoint: Endpoint) -> None:
        self.gateway = gateway
        self.endpoint: Endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve(self.gateway, self.endpoint, scope, receive, send)


async def serve(
    gateway: Gateway, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send
) -> None:
    """Serve one request: read, hand to the gateway, send its answer. Returns quietly when
    the client went away (nothing left to send)."""
    authorization: str | None = None
    declared: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"content-length":
            declared = value
    watch = _Watch(receive)
    reads = gateway.reads
    deadline = reads.deadline()
    unread = False

    async def read_body(limit: int) -> bytes:
        nonlocal unread
        try:
            body = await _read_body(receive, declared, limit, reads, deadline)
        except BodyTimeout:
            unread = True
            raise
        watch.start()
        return body

    try:
        answer = await gateway.handle(endpoint, authorization, read_body)
        if unread:  # the rest of the body may come yet: no next request on this connection
            answer.headers.append(CLOSE)
        await _send(answer, send)
    except asyncio.CancelledError:
        if not watch.gone:
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # this request's own cancellation, done with
    except _ClientGone:
        pass
    finally:
        watch.stop()


async def _send(answer: Answer, send: Send) -> None:
    stream = answer.stream
    if stream is None:
        body = answer.body
        headers = answer.headers
        headers.append((b"content-length", b"%d" % len(body)))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        if answer.after is not None:
            answer.after()
        return
    try:
        start = {"type": "http.response.start", "status": answer.status, "headers": answer.headers}
        await send(start)
        async for chunk in stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await stream.aclose()


async def _read_body(
    receive: Receive, declared: bytes | None, limit: int, reads: ReadDeadlines, deadline: float
) -> bytes:
    """The whole body by ``deadline``. Raises BodyTooLarge as soon as it is known to be over
    ``limit``, BodyTimeout when it is not all in by then (``Content-Length: 1000`` and 9 bytes
    sent had no answer, ever)."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is over the {limit}-byte limit", param="body")
    parts: list[bytes] = []
    size = 0
    try:
        while True:
            message = await reads.receive(receive, deadline)
            if message["type"] != "http.request":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"the body is over the {limit}-byte limit", param="body")
            if not message.get("more_body", False):
                if not parts:
                    return bytes(chunk)
                parts.append(chunk)
                return b"".join(parts)
            parts.append(chunk)
    except BodyTimeout as exc:
        of = f" of {int(declared)}" if declared is not None and declared.isdigit() else ""
        raise BodyTimeout(f"{exc.message} ({size}{of} bytes came)", param="body") from None


class _BodyDeadline:
    """``receive`` for the routes FastAPI serves, with the body bounded in time (``reads``).

    Until the body is all in, ``receive`` waits at most until ``reads.timeout_s`` after the
    request began, then raises a 408 HTTPException that closes the connection (FastAPI lets
    an HTTPException out of its body parsing; any other error there becomes its 400). Once
    the body is in, ``receive`` is passed through untouched: it then only reports a
    disconnect, which streamed answers wait on for as long as they run.
    """

    __slots__ = ("_deadline", "_in", "_reads", "_receive")

    def __init__(self, receive: Receive, reads: ReadDeadlines) -> None:
        self._receive = receive
        self._reads = reads
        self._deadline = reads.deadline()
        self._in = False

    async def receive(self) -> Message:
        if self._in:
            return await self._receive()
        try:
            message = await self._reads.receive(self._receive, self._deadline)
        except BodyTimeout as exc:
            raise HTTPException(408, exc.message, {"connection": "close"}) from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            self._in = True
        return message


class _Watch:
    """Cancels the request's task when ``receive`` says the client disconnected.

    Started once the body is in (``receive`` then only ever reports the disconnect); it
    begins listening ``WATCH_AFTER_S`` later, because most answers from a warm backend are
    gone by then and a listening task per request cost more than the rest of the dispatch.
    Stopped before the request ends, so the server's own end-of-response signal is never
    taken for a disconnect.
    """

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._task: asyncio.Task[Any] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._watcher: asyncio.Future[Message] | None = None
        self._stopped = False
        self.gone = False

    def start(self) -> None:
        self._task = asyncio.current_task()
        self._timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, self._listen)

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()

    def _listen(self) -> None:
        if not self._stopped:
            self._watcher = asyncio.ensure_future(self._receive())
            self._watcher.add_done_callback(self._heard)

    def _heard(self, watcher: asyncio.Future[Message]) -> None:
        if self._stopped or watcher.cancelled() or watcher.exception() is not None:
            return
        if watcher.result()["type"] == "http.disconnect" and self._task is not None:
            self.gone = True
            self._task.cancel()
