"""Fleet fixtures: fleets over fake backends, a port range of our own, no leftovers."""

from __future__ import annotations

import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from modelyard.catalog.model import Model
from modelyard.engines.command import CommandEngine, CommandLine
from modelyard.engines.registry import EngineRegistry
from modelyard.fleet.budget import InventoryReader
from modelyard.fleet.fleet import Fleet
from modelyard.settings import Settings, load_settings
from modelyard.store import Store
from tests.support.fleets import close_fleets

FAKE_BACKEND = Path(__file__).resolve().parents[1] / "fakes" / "fake_backend.py"


def fake_command(flags: str = "") -> str:
    return f"{sys.executable} {FAKE_BACKEND} --port ${{PORT}} {flags}".strip()


@pytest.fixture
def port_range() -> tuple[int, int]:
    """A range of our own: starting at a port the kernel just handed out."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        low = sock.getsockname()[1]
    if low + 100 > 65535:
        low -= 100
    return (low, low + 100)


@pytest.fixture
def fleet_settings(tmp_path: Path, port_range: tuple[int, int]) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data",
        discovery={"default_model": False, "hf": False, "ollama": False},
        fleet={
            "port_range": port_range,
            "start_timeout_s": 10.0,
            "stop_timeout_s": 2.0,
            "wedge_check_interval_s": 0.1,
            "wedge_failures": 2,
            "restart_backoff_s": 0.05,
            "restart_backoff_max_s": 0.2,
            "restart_limit": 3,
            "restart_window_s": 60.0,
        },
    )


FleetFactory = Callable[..., Awaitable[Fleet]]


@pytest.fixture
async def make_fleet(fleet_settings: Settings) -> AsyncIterator[FleetFactory]:
    """``await make_fleet(models={"id": "--flags"}, settings=...)``: a started fleet over fake
    backends. Every fleet is closed at teardown, and no server may be left running."""
    fleets: list[Fleet] = []
    stores: list[Store] = []

    async def build(
        models: dict[str, str | CommandLine],
        settings: Settings | None = None,
        start: bool = True,
        memory_bytes: int | None = None,
        inventory: InventoryReader | None = None,
    ) -> Fleet:
        chosen = settings or fleet_settings
        store = Store.open(chosen.db_path)
        stores.append(store)
        records = {
            mid: Model(
                id=mid, name=mid, source="curated", engine="command", memory_bytes=memory_bytes
            )
            for mid in models
        }
        lines = {
            mid: flags if isinstance(flags, CommandLine) else CommandLine(fake_command(flags))
            for mid, flags in models.items()
        }
        engines = EngineRegistry({"command": CommandEngine(lines.get)})
        fleet = Fleet(chosen, store, engines, lambda mid: records[mid], inventory=inventory)
        fleets.append(fleet)
        if start:
            await fleet.start()
        return fleet

    yield build
    await close_fleets(fleets, stores)
