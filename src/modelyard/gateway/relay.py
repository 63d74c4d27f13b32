"""Talking to one backend: send the request, wait for its first bytes, pass the rest on.

``open_upstream`` sends and waits for the response head and the first body bytes within the
first-byte timeout; until then nothing has reached the client, so any failure (refused,
reset, timeout, a 5xx) is a retryable UpstreamError. ``relay`` then yields the body piece by
piece as the backend sends it (never decoded, buffered or coalesced), each within the idle
timeout. A backend that fails mid-stream ends the stream with one OpenAI-shaped error event
and ``[DONE]``; the caller's ``finally`` closes the upstream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from modelyard.errors import UpstreamError
from modelyard.gateway.errors import error_event
from modelyard.upstream import UpstreamPool, UpstreamResponse

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"content-length",
        b"date",
        b"server",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
    }
)


class Upstream:
    """An open backend response: its status, its headers less hop-by-hop ones, its first
    piece and the rest, still unread. ``failure`` is set by ``relay`` when the stream broke."""

    __slots__ = ("failure", "first", "headers", "response", "status")

    def __init__(self, response: UpstreamResponse) -> None:
        self.response = response
        self.status = response.status
        self.headers = [(k, v) for k, v in response.headers if k not in HOP_BY_HOP]
        self.first = response.first
        self.failure: str | None = None

    def content_type(self) -> bytes:
        return next((v for k, v in self.headers if k == b"content-type"), b"")

    async def read_rest(self, idle_s: float) -> bytes:
        """The whole body (non-streaming answers), each piece within ``idle_s``.
        Raises UpstreamError/UpstreamTimeout."""
        parts = [self.first]
        try:
            while (chunk := await self.response.next(idle_s)) is not None:
                parts.append(chunk)
        except UpstreamError as exc:
            raise type(exc)(f"the backend failed mid-answer: {exc.message}") from None
        return b"".join(parts)

    async def aclose(self) -> None:
        self.response.release()


async def open_upstream(pool: UpstreamPool, url: str, body: bytes, first_byte_s: float) -> Upstream:
    """POST ``body`` to ``url``; return once the head and first bytes are in.

    Raises UpstreamTimeout (no first byte within ``first_byte_s``, connect timeout) or
    UpstreamError (refused, reset, closed); a cancelled call closes its connection.
    A 5xx is not raised here: the caller decides (``status``).
    """
    return Upstream(await pool.post(url, body, first_byte_s))


async def relay(
    upstream: Upstream, idle_s: float, on_chunk: Callable[[bytes], None] | None = None
) -> AsyncIterator[bytes]:
    """Yield the first piece and every later one as it arrives; ``on_chunk`` sees each.

    Never raises for a backend failure: when the backend fails or stalls past ``idle_s``
    mid-stream it yields one error event and ``[DONE]``, sets ``upstream.failure`` and ends.
    Does not close the upstream: the caller does, in ``finally``.
    """
    if upstream.first:
        if on_chunk is not None:
            on_chunk(upstream.first)
        yield upstream.first
    response = upstream.response
    while True:
        try:
            chunk = await response.next(idle_s)
        except UpstreamError as exc:
            upstream.failure = exc.message + " mid-stream"
            yield error_event(UpstreamError(f"the backend failed: {upstream.failure}"))
            return
        if chunk is None:
            return
        if on_chunk is not None:
            on_chunk(chunk)
        yield chunk
