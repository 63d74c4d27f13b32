"""What one ``/v1`` request has learnt so far (``Call``): it becomes its request figure."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.figures.record import usage_from_sse_event
from modelyard.gateway.answer import Headers
from modelyard.gateway.protocol import Endpoint


@dataclass(slots=True)
class Call:
    request_id: str
    endpoint: Endpoint
    started: float  # time.perf_counter()
    started_at: float  # time.time()
    stream: bool = False
    model_id: str | None = None
    instance_id: str | None = None
    route: str = ""
    ttft_s: float | None = None
    usage: tuple[int | None, int | None] = (None, None)
    loading: bool = False
    relaying: bool = False  # its answer is a relayed stream, recorded when the stream ends

    def headers(self) -> Headers:
        """What served it: ``x-modelyard-model``, ``-instance`` and ``-route``."""
        out = []
        if self.model_id:
            out.append((b"x-modelyard-model", header_safe(self.model_id).encode()))
        if self.instance_id:
            out.append((b"x-modelyard-instance", header_safe(self.instance_id).encode()))
        if self.route:
            out.append((b"x-modelyard-route", header_safe(self.route).encode()))
        return out

    def on_chunk(self, chunk: bytes) -> None:
        found = usage_from_sse_event(chunk)
        if found is not None:
            self.usage = found


def header_safe(text: str) -> str:
    if text.isascii() and text.isprintable():
        return text
    return "".join(c if c.isascii() and c.isprintable() else "?" for c in text)
