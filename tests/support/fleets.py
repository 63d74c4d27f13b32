"""Closing the fleets a test fixture built, and checking what they left behind."""

from __future__ import annotations

from collections.abc import Sequence

from modelyard.fleet.fleet import Fleet
from modelyard.store import Store
from tests.support.processes import server_children


async def close_fleets(fleets: Sequence[Fleet], stores: Sequence[Store]) -> None:
    """Close every fleet (stopping its servers), then every store, and fail if a server
    process outlived them (killing it first, so one test's leftover never reaches the next)."""
    for fleet in fleets:
        await fleet.aclose()
    for store in stores:
        store.close()
    left = server_children()
    for process in left:
        process.kill()
    assert not left, f"servers left running: {[p.pid for p in left]}"
