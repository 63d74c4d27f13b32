"""Issue 14: engines beyond llama.cpp (vLLM, Ollama, remote), each fault reproduced against
real processes: the fake ``vllm`` (tests/fakes/fake_vllm.py), the fake Ollama server
(tests/fakes/fake_ollama.py) and the fake OpenAI backend (tests/fakes/fake_backend.py), with
the real app served on a real port where a request path is involved."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx

from modelyard.fleet.fleet import Fleet

# The fleet fixtures, shared with tests/fleet (imported: pytest finds them by name here).
from tests.fleet.conftest import fleet_settings, port_range
from tests.fleet.test_vllm import FAKE_VLLM, VllmFleet, vllm_fleet
from tests.gateway.harness import gateway_settings, running
from tests.support.processes import wait_for

__all__ = ["fleet_settings", "port_range", "vllm_fleet"]

GIB = 1024**3
CHAT = {"messages": [{"role": "user", "content": "hello"}]}


def qwen_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "qwen-folder"
    folder.mkdir()
    config = {"num_hidden_layers": 2, "num_attention_heads": 2, "hidden_size": 64}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(b"\0" * 4096)
    return folder


async def _sleeping(fleet: Fleet) -> None:
    await fleet.create("qwen", {"idle_ttl": 0.1})
    await fleet.ensure_ready("qwen:01")
    await wait_for(lambda: fleet.get("qwen:01").state == "sleeping", 10, "the idle sleep")


async def test_a_failed_wake_falls_back_to_stop_and_start(vllm_fleet: VllmFleet) -> None:
    """Prevents a request hanging on (or failing for) an instance whose wake-up call fails:
    the fleet stops the sleeping server and starts it afresh, and the request is served."""
    fleet = await vllm_fleet("--fail-wake")
    await _sleeping(fleet)
    before = fleet.get("qwen:01").pid
    async with fleet.lease("qwen:01"):
        view = await fleet.ensure_ready("qwen:01")
    assert view.state == "ready" and view.pid is not None and view.pid != before
    assert any("could not wake" in line for line in fleet.logs("qwen:01", 200))


async def test_a_stop_while_asleep_stops_the_server(vllm_fleet: VllmFleet) -> None:
    """Prevents a sleeping server (holding host memory, its port) outliving a stop."""
    fleet = await vllm_fleet()
    await _sleeping(fleet)
    view = await fleet.stop_instance("qwen:01")
    assert view.state == "stopped" and view.pid is None and view.sleep_level is None


async def test_a_chat_reaches_vllm_under_its_served_name(tmp_path: Path) -> None:
    """vLLM answers 404 to a model name it does not serve: the gateway must send the served
    name (the instance id), not the catalog id the client asked for."""
    settings = gateway_settings(
        tmp_path,
        curated=[{"id": "qwen", "engine": "vllm", "path": str(qwen_folder(tmp_path))}],
        vllm={"binary": f"{sys.executable} {FAKE_VLLM} --load-delay 0.2", "overhead_bytes": GIB},
        memory={"ram_bytes": 64 * GIB, "gpus": [{"name": "gpu", "total_bytes": 16 * GIB}]},
    )
    async with running(settings) as served, httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(f"{served.v1}/chat/completions", json={"model": "qwen", **CHAT})
        listed = (await client.get(f"{served.url}/api/instances")).json()
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"].startswith("tok0")
    assert answer.headers["x-modelyard-instance"] == "qwen:01"
    view = next(i for i in listed if i["id"] == "qwen:01")
    assert view["state"] == "ready" and view["served_name"] == "qwen:01"
    assert view["memory_device"] == 0 and view["memory_estimate"] > GIB
