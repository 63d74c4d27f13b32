"""Who answers a plain model name: personas only when named, through the real gateway in front
of fake backends (the ``command`` engine)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.gateway.harness import fake_model, gateway_settings, running

ASK = [{"role": "user", "content": "What is the weather like?"}]


async def test_a_plain_model_name_never_lands_on_a_persona(tmp_path: Path) -> None:
    """Regression: 12 requests for the model id went to five personas at random."""
    settings = gateway_settings(tmp_path, curated=[fake_model("fake")])
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        fleet = gw.services.fleet
        for name in ("coder", "pirate"):
            config = {"display_name": name, "system_prompt": f"You are a {name}."}
            await fleet.create("fake", config)
        served = set()
        for _ in range(12):
            reply = await client.post(
                "/v1/chat/completions", json={"model": "fake", "messages": ASK}
            )
            assert reply.status_code == 200, reply.text
            served.add(reply.headers["x-modelyard-instance"])
        assert served == {"fake:03"}  # one new instance without a persona, started on demand
        assert fleet.get("fake:03").config.system_prompt is None
        named = await client.post("/v1/chat/completions", json={"model": "pirate", "messages": ASK})
        assert named.headers["x-modelyard-instance"] == "fake:02"
        assert named.headers["x-modelyard-route"] == "instance:pirate->fake:02"
