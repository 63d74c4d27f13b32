"""What the gateway answers one ``/v1`` request with, before any server framework sees it.

An ``Answer`` is a status, headers as byte pairs (ASGI's own form) and either a whole ``body``
or a ``stream``. ``gateway.asgi`` sends it. A stream must be closed with ``aclose`` whether or
not it was iterated: that releases the backend connection and records the outcome (a client
can go away before the first piece). ``after`` runs once a whole body has been sent (figures,
off the client's path).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from modelyard.errors import ModelyardError
from modelyard.gateway.errors import error_body

Headers = list[tuple[bytes, bytes]]
JSON_TYPE = (b"content-type", b"application/json")


class Body(Protocol):
    """A streamed body: iterated at most once, always closed."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class Answer:
    status: int
    headers: Headers
    body: bytes = b""
    stream: Body | None = None
    after: Callable[[], None] | None = None


def error_answer(exc: ModelyardError, headers: Headers | None = None) -> Answer:
    """``exc`` in OpenAI's shape, with its status and ``Retry-After`` when it carries one."""
    out = [JSON_TYPE, *(headers or ())]
    retry_after = exc.extra.get("retry_after")
    if retry_after is not None:
        out.append((b"retry-after", str(retry_after).encode()))
    return Answer(exc.status, out, json.dumps(error_body(exc)).encode())
