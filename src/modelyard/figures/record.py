"""One finished gateway request, and the parsers that find its token counts.

The parsers read OpenAI's ``usage`` (``prompt_tokens``, ``completion_tokens``) and
llama-server's ``timings`` (``prompt_n``, ``predicted_n``). They are on the proxy's hot path,
so ``usage_from_sse_event`` decides from a substring test whether a chunk is worth parsing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class RequestKind(StrEnum):
    """The ``/v1`` endpoint a request came to. The values are what the store, the request log
    and the ``endpoint`` label of the metrics hold."""

    CHAT = "chat"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"


class Outcome(StrEnum):
    """How a request ended: ``ok`` (the backend answered), ``error`` (it failed, or modelyard
    refused it), ``cancelled`` (the client went away first)."""

    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"


Usage = tuple[int | None, int | None]

# Below this much generation time a tokens/s figure is noise (one chunk, clock granularity).
MIN_GENERATION_S = 0.001

# Only a chunk holding real counts has one of these keys. A bare b'"usage"' is not enough:
# vLLM and OpenAI send `"usage": null` in every chunk, which would parse the whole stream.
# b'"prompt_' covers both "prompt_tokens" (usage) and "prompt_n" (timings).


def _has_counts(data: bytes) -> bool:
    return b'"prompt_' in data or b'"completion_tokens"' in data or b'"predicted_n"' in data


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What the gateway knows of one request once it has ended.

    ``started_at`` is wall-clock (``time.time()``); ``ttft_s`` and ``latency_s`` are durations
    from the start, measured on a monotonic clock. ``ttft_s`` is the time to the first token
    (first content chunk for a stream), ``None`` when none came. ``model_id`` and
    ``instance_id`` are ``None`` when the request failed before they were resolved.
    """

    request_id: str
    model_id: str | None
    instance_id: str | None
    route: str
    endpoint: RequestKind
    started_at: float
    ttft_s: float | None
    latency_s: float
    tokens_in: int | None
    tokens_out: int | None
    outcome: Outcome
    status: int
    error: str | None
    stream: bool

    @property
    def tokens_per_s(self) -> float | None:
        """Generation speed: tokens out over generation time.

        For a stream, generation time is the time after the first token; a whole response
        arrives at once, so without a stream (or without a TTFT) it is the whole latency.
        ``None`` unless the request succeeded with tokens out and at least
        ``MIN_GENERATION_S`` of generation time.
        """
        if self.outcome != Outcome.OK or not self.tokens_out:
            return None
        generation = self.latency_s
        if self.stream and self.ttft_s is not None:
            generation -= self.ttft_s
        if generation < MIN_GENERATION_S:
            return None
        return self.tokens_out / generation

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready values, with ``tokens_per_s``: one request-log line."""
        return {
            "request_id": self.request_id,
            "model_id": self.model_id,
            "instance_id": self.instance_id,
            "route": self.route,
            "endpoint": self.endpoint,
            "started_at": self.started_at,
            "ttft_s": self.ttft_s,
            "latency_s": self.latency_s,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "tokens_per_s": self.tokens_per_s,
            "outcome": self.outcome,
            "status": self.status,
            "error": self.error,
            "stream": self.stream,
        }


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def usage_from_body(body: Mapping[str, Any]) -> Usage:
    """Tokens (in, out) from a response body or one stream chunk, parsed already.

    OpenAI ``usage`` wins over llama-server ``timings``; either half is ``None`` when absent
    (an embeddings response has no completion tokens). Never raises on odd shapes.
    """
    usage = body.get("usage")
    if isinstance(usage, Mapping):
        found = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
        if found != (None, None):
            return found
    timings = body.get("timings")
    if isinstance(timings, Mapping):
        return _count(timings.get("prompt_n")), _count(timings.get("predicted_n"))
    return None, None


def usage_from_sse_event(data: bytes) -> Usage | None:
    """Tokens (in, out) from SSE bytes, or ``None`` when they hold no counts.

    ``data`` is one event or a chunk of several (``data: {...}`` lines), or a bare JSON
    payload. Bytes without a count key are rejected by a substring test, unparsed; an event
    split across chunks yields ``None``. When several events carry counts, the last wins.
    Never raises.
    """
    if not _has_counts(data):
        return None
    found: Usage | None = None
    for line in data.splitlines():
        payload = line.removeprefix(b"data:").strip()
        if not payload.startswith(b"{") or not _has_counts(payload):
            continue
        try:
            parsed = json.loads(payload)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            usage = usage_from_body(parsed)
            if usage != (None, None):
                found = usage
    return found
