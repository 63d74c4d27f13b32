"""Deployment profiles, end to end: ``deployment`` in the config reaches admission in the
served app (real uvicorn, real SQLite, fake backends as real processes through the command
engine), ``GET /api/models/deployment`` shows what is enforced, and bad names are clear 4xx.

No GPU on these machines: NVML's path is exercised only through GPUs set by hand in
``memory.gpus`` (the inventory's ``origin`` is then ``config``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.errors import ConfigError
from modelyard.settings import load_settings
from tests.gateway.harness import fake_model, gateway_settings, running

GIB = 1024**3


def chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


async def test_a_third_model_over_max_models_loaded_evicts_then_is_refused(
    tmp_path: Path,
) -> None:
    """Prevents ``deployment.max_models_loaded`` staying advisory in the served app: with 2,
    a chat for a third model stops the least recently used idle one; with the other two
    pinned or mid-stream it is a 507 naming the models, not a third start or a hang."""
    curated = [fake_model("a"), fake_model("b", "--tokens 400 --tokens-per-s 20"), fake_model("c")]
    settings = gateway_settings(tmp_path, curated=curated, deployment={"max_models_loaded": 2})
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        for model in ("b", "a", "c"):  # b is the least recently used when c comes
            reply = await client.post("/v1/chat/completions", json=chat(model, max_tokens=2))
            assert reply.status_code == 200, reply.text
        states = {v.id: v.state for v in gw.services.fleet.instances()}
        assert states == {"a:01": "ready", "b:01": "stopped", "c:01": "ready"}

        pinned = await client.put("/api/instances/a:01", json={"pinned": True})
        assert pinned.status_code == 200, pinned.text
        async with client.stream("POST", "/v1/chat/completions", json=chat("c", stream=True)):
            pass  # c read to its end: idle again, c and a loaded
        async with client.stream(
            "POST", "/v1/chat/completions", json=chat("b", stream=True)
        ) as streaming:
            assert streaming.status_code == 200  # b evicted c (idle), a is pinned
            chunks = streaming.aiter_raw()  # kept: a dropped iterator closes the stream
            await anext(chunks)  # b is mid-stream: in flight
            refused = await client.post("/v1/chat/completions", json=chat("c"))
        assert refused.status_code == 507, refused.text
        error = refused.json()["error"]
        assert error["code"] == "model_limit_reached"
        assert "max_models_loaded=2" in error["message"]
        assert "a (pinned)" in error["message"] and "b (1 in flight)" in error["message"]
        assert "Traceback" not in refused.text


async def test_the_route_shows_the_picked_profile_and_what_admission_enforces(
    tmp_path: Path,
) -> None:
    """Prevents the deployment shown and the one enforced drifting apart: two 16 GB GPUs
    set by hand pick gpu-2x16gb, the route says so with each GPU's budget, and a profile
    naming cpu overrides it once active."""
    settings = gateway_settings(
        tmp_path,
        memory={"ram_bytes": 64 * GIB, "gpus": [{"total_bytes": 16 * GIB}] * 2},
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        found = (await client.get("/api/models/deployment")).json()
        assert (found["name"], found["device"], found["source"]) == (
            "gpu-2x16gb",
            "gpu",
            "suggested",
        )
        budget = int(16 * GIB * 0.9) - settings.memory.reserve_bytes
        assert found["device_budgets"] == [budget, budget]
        assert (found["max_models_loaded"], found["ctx"], found["parallel"]) == (2, 8192, 2)
        assert found["enforced"] is True
        fits = {p["name"]: p["fits"] for p in found["profiles"]}
        assert fits == {
            "gpu-96gb": False,
            "gpu-2x16gb": True,
            "gpu-24gb": False,
            "gpu-16gb": True,
            "cpu": True,
        }
        assert any("largest that fits" in reason for reason in found["reasons"])

        profile = {"name": "small", "deployment": {"profile": "cpu", "max_models_loaded": 1}}
        created = await client.post("/api/models/profiles", json=profile)
        assert created.status_code in (200, 201), created.text
        activated = await client.post("/api/models/profiles/small/activate")
        assert activated.status_code == 200, activated.text
        after = (await client.get("/api/models/deployment")).json()
        assert (after["name"], after["device"], after["source"]) == ("cpu", "cpu", "profile")
        assert (after["max_models_loaded"], after["profile"]) == (1, "small")
        limits = await gw.services.fleet.memory.limits(await gw.services.fleet.memory.inventory())
        assert limits.max_models_loaded == 1  # what admission reads is what the route shows


async def test_an_unknown_deployment_profile_in_a_profile_is_a_400_naming_it(
    tmp_path: Path,
) -> None:
    """Prevents a mistyped profile name being stored and failing later at a start."""
    settings = gateway_settings(tmp_path)
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        reply = await client.post(
            "/api/models/profiles", json={"name": "typo", "deployment": {"profile": "gpu-13gb"}}
        )
        assert 400 <= reply.status_code < 500, reply.text
        assert "gpu-13gb" in reply.text or "deployment" in reply.text
        assert "gpu-16gb" in reply.text  # the names it could have been
        assert "Traceback" not in reply.text
        assert gw.services.profiles.active_name() is None


def test_an_unknown_deployment_profile_in_the_config_names_it(tmp_path: Path) -> None:
    """Prevents a mistyped ``deployment.profile`` being ignored at start."""
    config = tmp_path / "modelyard.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\ndeployment: {{profile: gpu-13gb}}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert "deployment.profile" in str(info.value) and "gpu-16gb" in str(info.value)
