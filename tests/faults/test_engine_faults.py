"""Issue 14: engines beyond llama.cpp (vLLM, Ollama, remote), each fault reproduced against
real processes: the fake ``vllm`` (tests/fakes/fake_vllm.py), the fake Ollama server
(tests/fakes/fake_ollama.py) and the fake OpenAI backend (tests/fakes/fake_backend.py), with
the real app served on a real port where a request path is involved."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from modelyard.fleet.fleet import Fleet

# The fleet fixtures, shared with tests/fleet (imported: pytest finds them by name here).
from tests.fleet.conftest import fleet_settings, port_range
from tests.fleet.test_vllm import FAKE_VLLM, VllmFleet, vllm_fleet
from tests.gateway.harness import gateway_settings, running
from tests.support.processes import external_server, free_port, wait_for

__all__ = ["fleet_settings", "port_range", "vllm_fleet"]

FAKES = Path(__file__).resolve().parents[1] / "fakes"
GIB = 1024**3
SECRET = "sk-remote-key-0123456789abcdef"
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


async def test_a_remote_gets_its_key_per_request_and_the_key_is_never_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote API needs ``Authorization: Bearer KEY`` from the variable ``api_key_env``
    names; the key must not reach the store, the logs or any /api answer. Its /v1/models is
    merged into the catalog as one curated model per remote model."""
    monkeypatch.setenv("LAB_API_KEY", SECRET)
    port = free_port()
    # The fake backend under another name: a server the test owns, not one the fleet spawned
    # (the harness fails on fleet servers that outlive the gateway).
    script = tmp_path / "remote_api.py"
    shutil.copyfile(FAKES / "fake_backend.py", script)
    argv = [sys.executable, str(script), "--port", str(port)]
    argv += ["--model", "gpt-x", "--require-key", SECRET]
    entry = {
        "id": "lab",
        "engine": "remote",
        "url": f"http://127.0.0.1:{port}/v1",
        "api_key_env": "LAB_API_KEY",
    }
    settings = gateway_settings(tmp_path, curated=[entry])
    with external_server(argv, port):
        async with running(settings) as served, httpx.AsyncClient(timeout=30) as client:
            catalog = served.services.catalog
            await wait_for(lambda: "lab--gpt-x" in catalog.snapshot(), 15, "the remote listing")
            body = {"model": "lab--gpt-x", **CHAT}
            answer = await client.post(f"{served.v1}/chat/completions", json=body)
            streamed = await client.post(
                f"{served.v1}/chat/completions", json={**body, "stream": True}
            )
            answers = [
                (await client.get(f"{served.url}{path}")).text
                for path in ("/api/instances", "/api/models", "/api/models/lab--gpt-x")
            ]
            answers.append((await client.get(f"{served.url}/api/instances/lab--gpt-x:01")).text)
            received = (
                await client.get(
                    f"http://127.0.0.1:{port}/_received",
                    headers={"authorization": f"Bearer {SECRET}"},
                )
            ).json()
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == "lab--gpt-x:01"
    assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
    assert [r["model"] for r in received] == ["gpt-x", "gpt-x"]  # the remote's own name
    assert all(SECRET not in text for text in answers)
    assert '"api_key_env":"LAB_API_KEY"' in answers[0].replace(" ", "")
    kept = [settings.db_path, *settings.logs_dir.glob("*")]
    for path in kept:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


async def test_an_external_remote_is_refused_with_a_4xx_naming_the_setting(
    tmp_path: Path,
) -> None:
    """Until the next issue decides what may leave the machine, a remote URL outside it and
    its LAN must be refused (never contacted) with an error naming remote.allow_external."""
    entry = {"id": "cloud", "engine": "remote", "url": "https://8.8.8.8/v1", "served_name": "m"}
    settings = gateway_settings(tmp_path, curated=[entry])
    async with running(settings) as served, httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(f"{served.v1}/chat/completions", json={"model": "cloud", **CHAT})
    assert answer.status_code == 403
    error = answer.json()["error"]
    assert error["code"] == "external_url_refused" and "remote.allow_external" in error["message"]


async def test_a_chat_through_ollama_uses_its_name_and_unloads_at_shutdown(
    tmp_path: Path,
) -> None:
    """Ollama selects the model by its name:tag: the gateway must send that, not the
    catalog id; stopping modelyard must unload the model (keep_alive 0), not leave it held."""
    port = free_port()
    argv = [sys.executable, str(FAKES / "fake_ollama.py"), "--port", str(port)]
    entry = {"id": "qwen", "engine": "ollama", "served_name": "qwen2.5:0.5b"}
    settings = gateway_settings(
        tmp_path, curated=[entry], ollama={"host": f"http://127.0.0.1:{port}"}
    )
    with external_server(argv, port):
        async with running(settings) as served, httpx.AsyncClient(timeout=30) as client:
            answer = await client.post(
                f"{served.v1}/chat/completions", json={"model": "qwen", **CHAT}
            )
            ps = (await client.get(f"http://127.0.0.1:{port}/api/ps")).json()
        async with httpx.AsyncClient(timeout=10) as client:
            after = (await client.get(f"http://127.0.0.1:{port}/api/ps")).json()
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-modelyard-instance"] == "qwen:01"
    assert [m["name"] for m in ps["models"]] == ["qwen2.5:0.5b"]
    assert after["models"] == []
