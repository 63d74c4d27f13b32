"""One request to one backend: an ``Exchange``.

``Exchange.open`` sends the request and returns once the response head and the first body
bytes are in, within the first-byte timeout; until then nothing has reached the client, so any
failure (refused, reset, timeout) is a retryable UpstreamError. The exchange is then read in
one of two ways:

- ``read_all``: the whole body (a non-streamed answer), each piece within the idle timeout;
- iterated (it is a streamed ``Body``): every piece as the backend sent it, never decoded,
  buffered or coalesced. A backend that fails or stalls mid-stream ends the stream with one
  OpenAI-shaped error event and ``[DONE]``.

and closed exactly once with ``aclose``, whatever happened (idempotent). Closing releases the
connection (back to the pool when read whole) and reports how the exchange ended to the
``on_end`` callback given at ``open``: ``Ending.OK`` (read or relayed to its end), ``FAILED``
(the backend broke: ``failure`` says how) or ``CANCELLED`` (closed before the end: the client
went away). Nothing else is told, and nothing is passed by mutating a shared object.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from enum import StrEnum

from modelyard.errors import UpstreamError
from modelyard.gateway.errors import error_event
from modelyard.upstream import Transport, UpstreamResponse, bearer

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
# The backend's CORS answer is not ours to relay: llama-server sends an empty
# access-control-allow-origin, which made browsers refuse every answer, even to an allowed
# origin. The gateway answers CORS itself (gateway.cors).
BACKEND_CORS = frozenset(
    {
        b"access-control-allow-origin",
        b"access-control-allow-credentials",
        b"access-control-allow-headers",
        b"access-control-allow-methods",
        b"access-control-expose-headers",
        b"access-control-max-age",
    }
)
NOT_RELAYED = HOP_BY_HOP | BACKEND_CORS


def for_upstream(
    body: bytes, served_name: str | None, api_key_env: str | None
) -> tuple[bytes, bytes]:
    """The body and extra header lines for a server that is not llama-server: ``model``
    set to the name it serves (vLLM checks it; Ollama and remote APIs select by it), and
    ``Authorization: Bearer`` with the key read from ``api_key_env`` now (never kept)."""
    if served_name is not None:
        payload = json.loads(body)  # parsed and checked once already: a JSON object
        payload["model"] = served_name
        body = json.dumps(payload, ensure_ascii=False).encode()
    return body, bearer(api_key_env)


class Ending(StrEnum):
    OK = "ok"
    FAILED = "failed"
    CANCELLED = "cancelled"


EndListener = Callable[["Exchange"], None]
ChunkListener = Callable[[bytes], None]


class Exchange:
    """See the module docstring. ``status``, ``headers`` (less hop-by-hop and CORS ones) and
    ``first`` are the backend's; ``ending`` and ``failure`` are set once it is closed."""

    __slots__ = (
        "_closed",
        "_idle_s",
        "_on_chunk",
        "_on_end",
        "_pieces",
        "_response",
        "ending",
        "failure",
        "first",
        "headers",
        "status",
    )

    def __init__(
        self,
        response: UpstreamResponse,
        idle_s: float,
        on_end: EndListener,
        on_chunk: ChunkListener | None = None,
    ) -> None:
        self._response = response
        self._idle_s = idle_s
        self._on_end = on_end
        self._on_chunk = on_chunk
        self._pieces: AsyncGenerator[bytes, None] | None = None
        self._closed = False
        self.status = response.status
        self.headers = [(k, v) for k, v in response.headers if k not in NOT_RELAYED]
        self.first = response.first
        self.ending = Ending.CANCELLED
        self.failure: str | None = None

    @classmethod
    async def open(
        cls,
        transport: Transport,
        url: str,
        body: bytes,
        *,
        first_byte_s: float,
        idle_s: float,
        on_end: EndListener,
        on_chunk: ChunkListener | None = None,
        headers: bytes = b"",
    ) -> Exchange:
        """POST ``body`` to ``url`` (with extra ``headers`` lines). Raises UpstreamTimeout (no
        first byte within ``first_byte_s``, connect timeout) or UpstreamError (refused, reset,
        closed); nothing is reported then. A 4xx/5xx is not raised: the caller reads
        ``status``."""
        response = await transport.post(url, body, first_byte_s, headers)
        return cls(response, idle_s, on_end, on_chunk)

    def content_type(self) -> bytes:
        return next((v for k, v in self.headers if k == b"content-type"), b"")

    async def read_all(self) -> bytes:
        """The whole body. Raises UpstreamError (``failure`` set) when the backend fails or
        stalls part-way."""
        parts = [self.first]
        response = self._response
        try:
            while (chunk := await response.next(self._idle_s)) is not None:
                parts.append(chunk)
        except UpstreamError as exc:
            self.failure = f"the backend failed mid-answer: {exc.message}"
            raise type(exc)(self.failure) from None
        self.ending = Ending.OK
        return b"".join(parts)

    def __aiter__(self) -> AsyncIterator[bytes]:
        self._pieces = self._relay()
        return self._pieces

    async def _relay(self) -> AsyncGenerator[bytes, None]:
        on_chunk = self._on_chunk
        if self.first:
            if on_chunk is not None:
                on_chunk(self.first)
            yield self.first
        response = self._response
        idle_s = self._idle_s
        while True:
            try:
                chunk = await response.next(idle_s)
            except UpstreamError as exc:
                self.failure = exc.message + " mid-stream"
                self.ending = Ending.FAILED
                yield error_event(UpstreamError(f"the backend failed: {self.failure}"))
                return
            if chunk is None:
                self.ending = Ending.OK
                return
            if on_chunk is not None:
                on_chunk(chunk)
            yield chunk

    async def aclose(self) -> None:
        """Release the connection and report the ending, once."""
        if self._closed:
            return
        self._closed = True
        if self._pieces is not None:
            await self._pieces.aclose()
        self._response.release()
        if self.failure is not None:
            self.ending = Ending.FAILED
        self._on_end(self)
