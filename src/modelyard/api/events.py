"""Server-sent events of state changes, for the dashboard.

    GET /api/events

Each event is ``id: N``, ``event: KIND``, ``data: JSON``; a comment line (``: keep-alive``)
goes out every ``api.events_keepalive_s`` seconds (15 by default) so proxies keep the
connection open. The stream ends when the client goes away (the response's disconnect
watcher cancels the generator, which leaves the bus).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from modelyard.api.errors import AUTH
from modelyard.api.state import AdminCaller, EventsDep, ServicesDep
from modelyard.events import Event, EventBus

router = APIRouter(prefix="/api/events", tags=["events"], responses=AUTH)


def encode(event: Event) -> bytes:
    data = json.dumps({"at": event.at, **event.data}, separators=(",", ":"), default=str)
    return f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n".encode()


async def stream(bus: EventBus, keepalive_s: float) -> AsyncIterator[bytes]:
    """Events as they come, with keep-alive comments in between. Runs until cancelled."""
    async with bus.subscribe() as sub:
        yield b": connected\n\n"
        while True:
            event = await sub.get(keepalive_s)
            yield b": keep-alive\n\n" if event is None else encode(event)


@router.get(
    "",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def events(bus: EventsDep, services: ServicesDep, _: AdminCaller) -> StreamingResponse:
    """A text/event-stream of ``instance.status``, ``catalog.rescan.progress``,
    ``catalog.rescan.done``, ``profile.activated`` and other change events."""
    return StreamingResponse(
        stream(bus, services.settings.api.events_keepalive_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
