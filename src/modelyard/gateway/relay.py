"""Talking to one backend: send the request, wait for its first bytes, pass the rest on.

``open_upstream`` sends and waits for the response head and the first body chunk within the
first-byte timeout; until then nothing has reached the client, so any failure (refused,
reset, timeout, a 5xx) is a retryable UpstreamError. ``relay`` then yields the body chunk by
chunk as the backend sends it (``aiter_raw``: never decoded, buffered or coalesced), each
chunk within the idle timeout. A backend that fails mid-stream ends the stream with one
OpenAI-shaped error event and ``[DONE]``; the caller's ``finally`` closes the upstream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx

from modelyard.errors import UpstreamError, UpstreamTimeout
from modelyard.gateway.errors import error_event

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "date",
        "server",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    }
)
UPSTREAM_HEADERS = {"content-type": "application/json", "accept-encoding": "identity"}


@dataclass(slots=True)
class Upstream:
    """An open backend response: its head, its first chunk and the rest, still unread."""

    response: httpx.Response
    first: bytes
    rest: AsyncIterator[bytes]
    failure: str | None = None  # set by ``relay`` when the stream broke

    @property
    def status(self) -> int:
        return self.response.status_code

    def headers(self) -> dict[str, str]:
        """The backend's headers, less hop-by-hop ones."""
        return {k: v for k, v in self.response.headers.items() if k.lower() not in HOP_BY_HOP}

    async def read_rest(self, idle_s: float) -> bytes:
        """The whole body (non-streaming answers). Raises UpstreamError/UpstreamTimeout."""
        parts = [self.first]
        try:
            async with asyncio.timeout(idle_s):
                async for chunk in self.rest:
                    parts.append(chunk)
        except TimeoutError:
            raise UpstreamTimeout(f"the backend stalled for {idle_s:g}s mid-answer") from None
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the backend failed mid-answer: {describe(exc)}") from None
        return b"".join(parts)

    async def aclose(self) -> None:
        await self.response.aclose()


def describe(exc: BaseException) -> str:
    """A short cause for a transport error, for messages and route reasons."""
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        # anyio reports a refusal on every address as "All connection attempts failed".
        refused = "refused" in text or "all connection attempts failed" in text
        return "connect refused" if refused else f"connect failed: {exc}"
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection closed"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "connection reset"
    return type(exc).__name__


async def open_upstream(
    client: httpx.AsyncClient, url: str, body: bytes, first_byte_s: float
) -> Upstream:
    """POST ``body`` to ``url``; return once the head and first chunk are in.

    Raises UpstreamTimeout (no first byte within ``first_byte_s``, connect timeout) or
    UpstreamError (refused, reset, closed). Closes the response itself when it raises.
    A 5xx is not raised here: the caller decides (``status``).
    """
    request = client.build_request("POST", url, content=body, headers=UPSTREAM_HEADERS)
    response: httpx.Response | None = None
    try:
        async with asyncio.timeout(first_byte_s):
            response = await client.send(request, stream=True)
            rest = response.aiter_raw()
            first = await anext(rest, b"")
    except BaseException as exc:
        if response is not None:
            await response.aclose()
        if isinstance(exc, TimeoutError | httpx.TimeoutException):
            what = "connect timeout" if isinstance(exc, httpx.ConnectTimeout) else None
            raise UpstreamTimeout(what or f"no first byte within {first_byte_s:g}s") from None
        if isinstance(exc, httpx.HTTPError):
            raise UpstreamError(describe(exc)) from None
        raise
    return Upstream(response, first, rest)


async def relay(
    upstream: Upstream, idle_s: float, on_chunk: Callable[[bytes], None] | None = None
) -> AsyncIterator[bytes]:
    """Yield the first chunk and every later one as it arrives; ``on_chunk`` sees each.

    Never raises for a backend failure: when the backend fails or stalls past ``idle_s``
    mid-stream it yields one error event and ``[DONE]``, sets ``upstream.failure`` and ends.
    Does not close the upstream: the caller does, in ``finally``.
    """
    if upstream.first:
        if on_chunk is not None:
            on_chunk(upstream.first)
        yield upstream.first
    rest = upstream.rest
    while True:
        try:
            async with asyncio.timeout(idle_s):
                chunk = await anext(rest, None)
        except TimeoutError:
            upstream.failure = f"stalled for {idle_s:g}s mid-stream"
        except httpx.HTTPError as exc:
            upstream.failure = describe(exc) + " mid-stream"
        else:
            if chunk is None:
                return
            if on_chunk is not None:
                on_chunk(chunk)
            yield chunk
            continue
        yield error_event(UpstreamError(f"the backend failed: {upstream.failure}"))
        return
