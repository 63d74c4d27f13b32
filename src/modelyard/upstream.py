"""Keep-alive HTTP/1.1 POSTs to backends: a small connection pool on asyncio, httptools parsing.

The gateway's hot path sends one kind of request (a POST with a JSON body) to a handful of
loopback backends, so it does not need a general client (the fleet's health checks use
``UpstreamPool.get_status``, a GET read whole, rather than a second one). ``post`` writes the
request on a pooled connection (or a new one) and returns once the response head and the first
body bytes are in; ``UpstreamResponse.next`` gives the rest, one piece per parsed body event
(never coalesced, never decoded); ``release`` hands the connection back to the pool when its
response was read whole and the backend keeps it alive, and closes it otherwise (a body left
unread, an error, a cancelled wait).

Idle connections are kept per backend address, newest first (LIFO: the one most recently used
is the least likely to have been closed by its server), at most ``max_idle`` of them, each for
at most ``idle_expiry_s``. A pooled connection that the backend closed while it sat idle fails
before any response byte comes back; such a request is sent once more on a new connection (the
backend never answered, so it did not act on it). Nothing is retried once a byte came back.

Errors: ``UpstreamTimeout`` (connect, first byte, idle between pieces), ``UpstreamRefused``
(connect refused: nothing was sent) and ``UpstreamError`` (reset, closed, a malformed
response); messages are short causes (``connect refused``, ``connection closed``) that route
reasons quote.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from dataclasses import dataclass
from typing import Protocol, cast
from urllib.parse import urlsplit

import httptools

from modelyard.errors import UpstreamError, UpstreamRefused, UpstreamTimeout
from modelyard.settings import environment_secret

_HIGH_WATER = 512 * 1024  # unread body bytes past which the socket stops being read
_LOW_WATER = 64 * 1024
_SMALL_BODY = 64 * 1024  # sent in one write together with the head
_MAX_ADDRESSES = 1024

_Key = tuple[str, int, bool]


@dataclass(frozen=True, slots=True)
class _Address:
    key: _Key  # host, port, TLS
    head: bytes  # the POST's head up to the content-length value
    get: bytes  # a whole GET request


class _Connection(asyncio.Protocol):
    """One backend connection, one exchange at a time. Fed by the event loop (``data_received``
    → httptools → the ``on_*`` callbacks); read by one task through ``next``."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.received = False  # any response byte of this exchange
        self.complete = False
        self.failure: str | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._paused = False
        self._framed = False  # content-length or chunked: the body does not end at EOF
        self._waiter: asyncio.Future[bool] | None = None

    # -- the event loop's side ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:  # bytes nobody asked for: the connection cannot be trusted
            self.close()
            return
        self.received = True
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"malformed response: {exc}")
            self.close()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._parser is None or self.complete:
            return
        if exc is None and self.status and not self._framed:
            self.complete = True  # a body delimited by the end of the connection
            self._wake()
        else:
            self._fail("connection reset" if exc is not None else "connection closed")

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length" or name == b"transfer-encoding":
            self._framed = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        self.status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        assert self._parser is not None
        self.complete = True
        if not self._parser.should_keep_alive():
            self.closed = True  # not reusable; closed on release
        self._wake()

    # -- the reader's side --------------------------------------------------------------------

    def begin(self, request: bytes, body: bytes) -> None:
        """Start an exchange: reset the response state and write the request."""
        self.status = 0
        self.headers = []
        self.received = self.complete = self._framed = False
        self.failure = None
        self._parser = httptools.HttpResponseParser(self)
        if self.closed or self.transport is None:  # lost while it was being opened
            self.failure = "connection closed"
            return
        if len(body) <= _SMALL_BODY:
            self.transport.write(request + body)
        else:
            self.transport.writelines((request, body))

    async def next(self, timeout_s: float) -> bytes | None:
        """The next body piece, or None at the end. Raises UpstreamError (the connection
        failed), TimeoutError (nothing within ``timeout_s``)."""
        while True:
            if self._chunks:
                return self.pop()
            if self.complete:
                return None
            if self.failure is not None:
                raise UpstreamError(self.failure)
            await self._wait(timeout_s)

    def pop(self) -> bytes:
        """The oldest unread body piece (there must be one)."""
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < _LOW_WATER and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunk

    def pending(self) -> bool:
        """Whether body pieces are waiting to be read."""
        return bool(self._chunks)

    async def first(self, timeout_s: float) -> None:
        """Wait for the head and the first body piece (or the end, or a failure)."""
        while not (self._chunks or self.complete or self.failure is not None):
            await self._wait(timeout_s)

    def park(self) -> None:
        """Between exchanges: bytes arriving now are unasked for."""
        self._parser = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def _wait(self, timeout_s: float) -> None:
        # A bare future and one timer, not asyncio.timeout(): this runs once per piece.
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(timeout_s, _expire, waiter)
        try:
            woken = await waiter
        finally:
            timer.cancel()
            self._waiter = None
        if not woken:
            raise TimeoutError

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(True)

    def _fail(self, why: str) -> None:
        if self.failure is None:
            self.failure = why
        self._wake()


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class UpstreamResponse:
    """A backend's answer: ``status``, ``headers`` (names lower-cased, as sent), ``first``
    (the first body piece, ``b""`` for an empty body) and the rest through ``next``.
    Call ``release`` when done with it, whatever happened (idempotent)."""

    __slots__ = ("_conn", "_key", "_pool", "first", "headers", "status")

    def __init__(self, pool: UpstreamPool, key: _Key, conn: _Connection, first: bytes) -> None:
        self._pool = pool
        self._key = key
        self._conn: _Connection | None = conn
        self.status = conn.status
        self.headers = conn.headers
        self.first = first

    async def next(self, idle_s: float) -> bytes | None:
        """The next body piece as the backend sent it; None at the end. Raises UpstreamError
        (the connection broke) or UpstreamTimeout (nothing for ``idle_s``)."""
        conn = self._conn
        if conn is None:
            return None
        try:
            return await conn.next(idle_s)
        except TimeoutError:
            raise UpstreamTimeout(f"stalled for {idle_s:g}s") from None

    def release(self) -> None:
        """Back to the pool when read whole and kept alive; closed otherwise."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool._checkin(self._key, conn)


class Transport(Protocol):
    """What the gateway and the fleet's health checks need of the network: one object, built
    by the composition root (``UpstreamPool``), so a test double is a plain class."""

    async def post(
        self, url: str, body: bytes, first_byte_s: float, headers: bytes = b""
    ) -> UpstreamResponse: ...

    async def get_status(self, url: str, timeout_s: float, headers: bytes = b"") -> int: ...

    async def call(
        self, method: str, url: str, body: bytes, timeout_s: float, headers: bytes = b""
    ) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


def bearer(api_key_env: str | None) -> bytes:
    """The ``authorization: Bearer`` header line with the key in ``api_key_env``, read now
    (a remote API's key is never kept); b"" when no variable is named or it is unset."""
    key = environment_secret(api_key_env) if api_key_env is not None else None
    return b"authorization: Bearer " + key.encode("latin-1") + b"\r\n" if key else b""


def _with_headers(head: bytes, headers: bytes) -> bytes:
    """A cached POST head (ending ``content-length: ``) with extra header lines before it."""
    cut = len(head) - len(b"content-length: ")
    return head[:cut] + headers + head[cut:]


class UpstreamPool:
    """Pooled connections to backends. One per gateway (no module state); ``aclose`` at stop.

    ``post`` blocks until the response's first body bytes are in, within ``first_byte_s``
    (connecting within ``connect_s`` of it). Raises UpstreamTimeout or UpstreamError; a
    cancelled ``post`` closes its connection. A status of 4xx/5xx is not an error here.
    """

    def __init__(
        self, connect_s: float, *, max_idle: int = 256, idle_expiry_s: float = 4.0
    ) -> None:
        self._connect_s = connect_s
        self._max_idle = max_idle
        self._expiry_s = idle_expiry_s
        self._idle: dict[_Key, collections.deque[_Connection]] = {}
        self._addresses: dict[str, _Address] = {}
        self._tls: ssl.SSLContext | None = None
        self._closed = False

    async def post(
        self, url: str, body: bytes, first_byte_s: float, headers: bytes = b""
    ) -> UpstreamResponse:
        """POST ``body`` (JSON) to ``url``; return once the head and first body bytes are in.
        ``headers``: extra header lines, each ending ``\\r\\n`` (a remote's Authorization);
        local backends pass none and keep the one cached head."""
        address = self._address(url)
        head = address.head if not headers else _with_headers(address.head, headers)
        request = head + b"%d\r\n\r\n" % len(body)
        return await self._send(address, request, body, first_byte_s)

    async def get_status(self, url: str, timeout_s: float, headers: bytes = b"") -> int:
        """GET ``url``, read the answer whole and return its status, all within ``timeout_s``.

        For health checks (the fleet's readiness and wedge polls): raises UpstreamTimeout or
        UpstreamError like ``post``; the connection is pooled when the backend keeps it alive.
        """
        status, _ = await self.call("GET", url, b"", timeout_s, headers)
        return status

    async def call(
        self, method: str, url: str, body: bytes, timeout_s: float, headers: bytes = b""
    ) -> tuple[int, bytes]:
        """One GET or POST read whole within ``timeout_s``: (status, body). Off the hot path:
        the fleet's readiness checks, load/unload/sleep calls and metrics scrapes. Raises
        UpstreamTimeout or UpstreamError like ``post``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        address = self._address(url)
        if method == "GET":
            request = address.get if not headers else address.get[:-2] + headers + b"\r\n"
        else:
            head = _with_headers(address.head, headers) if headers else address.head
            request = head + b"%d\r\n\r\n" % len(body)
        response = await self._send(address, request, body, timeout_s)
        parts = [response.first]
        try:
            while (piece := await response.next(max(0.0, deadline - loop.time()))) is not None:
                parts.append(piece)
        finally:
            response.release()
        return response.status, b"".join(parts)

    async def _send(
        self, address: _Address, request: bytes, body: bytes, first_byte_s: float
    ) -> UpstreamResponse:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + first_byte_s
        conn = self._checkout(address.key)
        while True:
            reused = conn is not None
            if conn is None:
                conn = await self._connect(address.key, deadline - loop.time())
            try:
                conn.begin(request, body)
                await conn.first(max(0.0, deadline - loop.time()))
            except TimeoutError:
                conn.close()
                raise UpstreamTimeout(f"no first byte within {first_byte_s:g}s") from None
            except BaseException:
                conn.close()
                raise
            if conn.failure is None or conn.pending() or conn.complete:
                first = conn.pop() if conn.pending() else b""
                return UpstreamResponse(self, address.key, conn, first)
            conn.close()
            if not reused or conn.received:
                raise UpstreamError(conn.failure)
            conn = None  # a stale pooled connection; the backend saw nothing: once more

    async def aclose(self) -> None:
        """Close every idle connection; later releases close theirs."""
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()

    def idle_count(self, url: str) -> int:
        """Idle pooled connections to ``url``'s backend."""
        idle = self._idle.get(self._address(url).key)
        return sum(1 for conn in idle if not conn.closed) if idle else 0

    def _address(self, url: str) -> _Address:
        address = self._addresses.get(url)
        if address is None:
            parts = urlsplit(url)
            tls = parts.scheme == "https"
            host = parts.hostname or "127.0.0.1"
            port = parts.port or (443 if tls else 80)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            head = (
                f"POST {target} HTTP/1.1\r\nhost: {parts.netloc}\r\n"
                "content-type: application/json\r\naccept-encoding: identity\r\n"
                "content-length: "
            )
            get = f"GET {target} HTTP/1.1\r\nhost: {parts.netloc}\r\n\r\n"
            address = _Address((host, port, tls), head.encode("latin-1"), get.encode("latin-1"))
            if len(self._addresses) >= _MAX_ADDRESSES:
                self._addresses.clear()
            self._addresses[url] = address
        return address

    async def _connect(self, key: _Key, left_s: float) -> _Connection:
        host, port, tls = key
        loop = asyncio.get_running_loop()
        timeout_s = min(self._connect_s, left_s)
        context = self._tls_context() if tls else None
        try:
            async with asyncio.timeout(max(0.0, timeout_s)):
                _, conn = await loop.create_connection(_Connection, host, port, ssl=context)
        except TimeoutError:
            raise UpstreamTimeout("connect timeout") from None
        except ConnectionRefusedError:
            raise UpstreamRefused("connect refused") from None
        except OSError as exc:
            raise UpstreamError(f"connect failed: {exc}") from None
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def _checkout(self, key: _Key) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._expiry_s:
                return conn
            conn.close()
        return None

    def _checkin(self, key: _Key, conn: _Connection) -> None:
        if self._closed or conn.closed or not conn.complete or conn.pending():
            conn.close()
            return
        conn.park()
        conn.reused = True
        conn.idle_since = time.monotonic()
        idle = self._idle.get(key)
        if idle is None:
            idle = self._idle[key] = collections.deque()
        if len(idle) >= self._max_idle:
            idle.popleft().close()  # the oldest: the likeliest to be stale
        idle.append(conn)
