"""Readiness overhead: how long after a server becomes healthy the fleet reports it ready.

A fake backend (``tests/fakes/fake_backend.py --ready-after T``) answers ``/health`` 200 from
exactly T seconds after its process was created. The fleet starts it through the ``command``
engine; overhead = (when ``start_instance`` returned) - (process creation + T). The fake and
this bench read the creation time the same way (``/proc`` start ticks plus boot time), so the
boot-time clock's offset from ``time.time()`` cancels. Goal: p50 overhead <= 25 ms.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from modelyard.catalog.model import Model
from modelyard.engines.command import CommandEngine, CommandLine
from modelyard.engines.registry import EngineRegistry
from modelyard.fleet.fleet import Fleet
from modelyard.fleet.spawn import create_time
from modelyard.settings import load_settings
from modelyard.store import Store

READY_AFTER_S = (0.5, 2.0)
RUNS = 5
GOAL_S = 0.025
FAKE = Path(__file__).resolve().parents[2] / "tests" / "fakes" / "fake_backend.py"


def _port_range() -> tuple[int, int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        low: int = sock.getsockname()[1]
    return (low, low + 50) if low + 50 <= 65535 else (low - 50, low)


async def _measure(folder: Path) -> dict[float, list[float]]:
    settings = load_settings(data_dir=folder, fleet={"port_range": _port_range()})
    store = Store.open(settings.db_path)
    models = {
        f"t{t:g}": Model(id=f"t{t:g}", name="fake", source="curated", engine="command")
        for t in READY_AFTER_S
    }
    lines = {
        f"t{t:g}": CommandLine(f"{sys.executable} {FAKE} --port ${{PORT}} --ready-after {t}")
        for t in READY_AFTER_S
    }
    engines = EngineRegistry({"command": CommandEngine(lines.get)})
    fleet = Fleet(settings, store, engines, models.__getitem__)
    await fleet.start()
    results: dict[float, list[float]] = {t: [] for t in READY_AFTER_S}
    try:
        for t in READY_AFTER_S:
            (view,) = await fleet.create(f"t{t:g}")
            for _ in range(RUNS):
                ready = await fleet.start_instance(view.id)
                returned = time.time()
                assert ready.pid is not None
                created = create_time(ready.pid)
                assert created is not None
                results[t].append(returned - (created + t))
                await fleet.stop_instance(view.id)
    finally:
        await fleet.aclose()
        store.close()
    return results


def run() -> None:
    """Print p50/max overhead per T and whether the p50 goal is met."""
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as folder:
        results = asyncio.run(_measure(Path(folder)))
    print(f"readiness overhead ({RUNS} runs each; goal p50 <= {GOAL_S * 1000:.0f} ms)")
    print(f"{'T':>5} {'p50':>8} {'min':>8} {'max':>8}  goal")
    for t, overheads in results.items():
        p50 = statistics.median(overheads)
        print(
            f"{t:>4g}s {p50 * 1000:>6.1f}ms {min(overheads) * 1000:>6.1f}ms "
            f"{max(overheads) * 1000:>6.1f}ms  {'ok' if p50 <= GOAL_S else 'MISSED'}"
        )


if __name__ == "__main__":
    run()
