"""Records and waits shared by the figures tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from modelyard.figures.record import Outcome, RequestKind, RequestRecord

NOW = 1_700_000_000.0


def rec(**fields: Any) -> RequestRecord:
    """A successful streamed chat request on m1:01 unless ``fields`` say otherwise."""
    base: dict[str, Any] = {
        "request_id": "r",
        "model_id": "m1",
        "instance_id": "m1:01",
        "route": "model",
        "endpoint": RequestKind.CHAT,
        "started_at": NOW,
        "ttft_s": 0.1,
        "latency_s": 1.1,
        "tokens_in": 10,
        "tokens_out": 20,
        "outcome": Outcome.OK,
        "status": 200,
        "error": None,
        "stream": True,
    }
    base.update(fields)
    return RequestRecord(**base)


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.01)
