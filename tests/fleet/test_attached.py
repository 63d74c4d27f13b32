"""Attached servers (the fleet spawns nothing): Ollama's server (tests/fakes/fake_ollama.py)
and a remote OpenAI-compatible API (tests/fakes/fake_backend.py), each a real process the
test starts itself."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from modelyard.catalog.model import Model
from modelyard.engines.ollama import OllamaEngine
from modelyard.engines.registry import EngineRegistry
from modelyard.engines.remote import RemoteEngine
from modelyard.errors import ExternalUrlRefused, StartFailed
from modelyard.fleet.fleet import Fleet
from modelyard.settings import OllamaSettings, RemoteSettings, Settings
from modelyard.store import Store
from tests.support.fleets import close_fleets
from tests.support.processes import external_server, free_port, wait_for

FAKES = Path(__file__).resolve().parents[1] / "fakes"
FAKE_OLLAMA = FAKES / "fake_ollama.py"
FAKE_BACKEND = FAKES / "fake_backend.py"

AttachedFleet = Callable[[dict[str, Model]], Awaitable[Fleet]]


def ollama_ps(port: int) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/ps", timeout=5) as answer:
        return [m["name"] for m in json.load(answer)["models"]]


@pytest.fixture
def ollama_port() -> Iterator[int]:
    port = free_port()
    argv = [sys.executable, str(FAKE_OLLAMA), "--port", str(port), "--load-delay", "0.2"]
    with external_server(argv, port):
        yield port


@pytest.fixture
async def attached_fleet(
    fleet_settings: Settings, ollama_port: int
) -> AsyncIterator[AttachedFleet]:
    fleets: list[Fleet] = []
    stores: list[Store] = []

    async def build(models: dict[str, Model]) -> Fleet:
        store = Store.open(fleet_settings.db_path)
        stores.append(store)
        host = f"http://127.0.0.1:{ollama_port}"
        engines = EngineRegistry(
            {
                "ollama": OllamaEngine(OllamaSettings(host=host)),
                "remote": RemoteEngine(RemoteSettings()),
            }
        )
        fleet = Fleet(fleet_settings, store, engines, lambda mid: models[mid])
        fleets.append(fleet)
        await fleet.start()
        return fleet

    yield build
    await close_fleets(fleets, stores)  # and no server process: attached engines spawn none


def ollama_model(name: str = "qwen2.5:0.5b") -> Model:
    return Model(id="qwen", name="qwen", source="curated", engine="ollama", served_name=name)


async def test_ollama_start_loads_and_stop_unloads(
    attached_fleet: AttachedFleet, ollama_port: int
) -> None:
    fleet = await attached_fleet({"qwen": ollama_model()})
    await fleet.create("qwen")
    view = await fleet.ensure_ready("qwen:01")
    assert view.state == "ready" and view.pid is None
    assert view.base_url == f"http://127.0.0.1:{ollama_port}"
    assert view.served_name == "qwen2.5:0.5b"
    assert ollama_ps(ollama_port) == ["qwen2.5:0.5b"]  # loaded with keep_alive -1
    await wait_for(lambda: fleet.get("qwen:01").load is not None, 10, "an /api/ps scrape")
    assert fleet.get("qwen:01").load == {"size": 500_000_000.0, "size_vram": 400_000_000.0}
    stopped = await fleet.stop_instance("qwen:01")
    assert stopped.state == "stopped"
    assert ollama_ps(ollama_port) == []  # keep_alive 0: unloaded now


async def test_ollama_model_not_in_its_store_fails_the_start_clearly(
    attached_fleet: AttachedFleet,
) -> None:
    fleet = await attached_fleet({"qwen": ollama_model("nosuch:7b")})
    await fleet.create("qwen")
    with pytest.raises(StartFailed, match="not found, try pulling it first"):
        await fleet.ensure_ready("qwen:01")
    assert fleet.get("qwen:01").state == "error"


async def test_remote_is_ready_once_it_lists_the_served_name(
    attached_fleet: AttachedFleet,
) -> None:
    port = free_port()
    argv = [sys.executable, str(FAKE_BACKEND), "--port", str(port), "--model", "gpt-x"]
    with external_server(argv, port):
        models = {
            "lab": Model(
                id="lab",
                name="lab",
                source="curated",
                engine="remote",
                url=f"http://127.0.0.1:{port}/v1",
                served_name="gpt-x",
            )
        }
        fleet = await attached_fleet(models)
        await fleet.create("lab")
        view = await fleet.ensure_ready("lab:01")
        assert view.state == "ready" and view.base_url == f"http://127.0.0.1:{port}"
        await fleet.stop_instance("lab:01")


async def test_an_external_remote_url_is_refused_naming_the_setting(
    attached_fleet: AttachedFleet,
) -> None:
    model = Model(
        id="cloud", name="cloud", source="curated", engine="remote", url="https://8.8.8.8/v1"
    )
    fleet = await attached_fleet({"cloud": model})
    await fleet.create("cloud")
    with pytest.raises(ExternalUrlRefused, match=r"remote\.allow_external"):
        await fleet.ensure_ready("cloud:01")
