"""Cross-origin access to ``/v1`` for browser pages: ``gateway.cors_origins``.

A page served from another origin (a chat UI on ``http://localhost:3000``) may call the gateway
only when its origin is listed (``"*"``: any origin). Then:

- its preflight (``OPTIONS /v1/...`` with ``Origin`` and ``Access-Control-Request-Method``) is
  answered 204 with the methods and the request headers it asked for (``preflight``); from an
  origin that is not listed, or when none is, the preflight is refused with OriginNotAllowed
  (403, OpenAI's shape, naming the setting) so the reason shows in the browser's network tab;
- every other ``/v1`` answer to a listed origin carries ``access-control-allow-origin`` (the
  origin itself, with ``vary: origin``) and exposes the ``x-modelyard-*`` headers (``wrap``).

With no origins configured ``FastPathApp`` skips all of it after one attribute test, so the hot
path pays nothing. A backend's own CORS headers never reach the client (``exchange.NOT_RELAYED``):
llama-server sends an empty ``access-control-allow-origin``, which a browser refuses.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Message, Scope, Send

from modelyard.errors import OriginNotAllowed

Headers = list[tuple[bytes, bytes]]
METHODS = b"GET, POST, OPTIONS"
ASKED_HEADERS = b"authorization, content-type"  # when the preflight names none
EXPOSED = b"x-modelyard-model, x-modelyard-instance, x-modelyard-route, retry-after"
MAX_AGE_S = b"600"


class Cors:
    """The allowed origins (``gateway.cors_origins``, already lower-case) and the headers they
    get. Immutable; built once by the app."""

    __slots__ = ("_any", "_origins", "enabled")

    def __init__(self, origins: Iterable[str]) -> None:
        listed = tuple(origins)
        self._any = "*" in listed
        self._origins = frozenset(o.encode("latin-1") for o in listed if o != "*")
        self.enabled = bool(listed)

    def allows(self, origin: bytes) -> bool:
        return self._any or origin.lower() in self._origins

    def wrap(self, scope: Scope, send: Send) -> Send:
        """``send``, adding the CORS headers to the response start when ``scope`` comes from an
        allowed origin; ``send`` itself otherwise (same origin, other clients, not allowed)."""
        origin = origin_of(scope)
        if origin is None or not self.allows(origin):
            return send
        extra: Headers = [
            (b"access-control-allow-origin", origin),
            (b"vary", b"origin"),
            (b"access-control-expose-headers", EXPOSED),
        ]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        return sending

    def preflight(self, origin: str, asked_headers: str | None) -> Headers:
        """The headers of the 204 answering a preflight from ``origin``. Raises
        OriginNotAllowed when the origin is not listed."""
        raw = origin.encode("latin-1")
        if not self.allows(raw):
            raise OriginNotAllowed(
                f"cross-origin requests from {origin!r} are not allowed: "
                "add that origin to gateway.cors_origins",
                param="origin",
            )
        return [
            (b"access-control-allow-origin", raw),
            (b"access-control-allow-methods", METHODS),
            (
                b"access-control-allow-headers",
                (asked_headers or "").encode("latin-1") or ASKED_HEADERS,
            ),
            (b"access-control-max-age", MAX_AGE_S),
            (b"vary", b"origin, access-control-request-method, access-control-request-headers"),
        ]


def origin_of(scope: Scope) -> bytes | None:
    """The request's ``Origin`` header, or None."""
    for name, value in scope["headers"]:
        if name == b"origin":
            return bytes(value)
    return None
