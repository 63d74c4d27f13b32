"""Bad input, unknown models, the models list and API keys: OpenAI-shaped answers, no 500s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.harness import fake_model, gateway_settings, running

KEY = "sk-test-0123456789"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b"{not json", 400, "body"),
        (b"[1, 2]", 400, "body"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', 400, "model"),
        (b'{"model": 7, "messages": []}', 400, "model"),
        (b'{"model": "", "messages": []}', 400, "model"),
        (b'{"model": "fake", "stream": "yes", "messages": [{"role": "user"}]}', 400, "stream"),
        (b'{"model": "fake"}', 400, "messages"),
        (b'{"model": "fake", "messages": "hi"}', 400, "messages"),
        (b'{"model": "fake", "messages": [3]}', 400, "messages[0]"),
        (b'{"model": "fake", "messages": [{"content": "x"}]}', 400, "messages[0].role"),
        (
            b'{"model": "fake", "messages": [{"role": "user", "content": 5}]}',
            400,
            "messages[0].content",
        ),
        (
            b'{"model": "fake", "messages": [{"role": "user", "content": "' + b"x" * 3000 + b'"}]}',
            413,
            "body",
        ),
    ],
)
async def test_bad_chat_bodies_name_the_field(
    tmp_path: Path, body: bytes, status: int, param: str
) -> None:
    settings = gateway_settings(
        tmp_path, curated=[fake_model("fake")], gateway={"max_body_bytes": 2048}
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        reply = await client.post(
            "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
        )
        assert reply.status_code == status, reply.text
        error = reply.json()["error"]
        assert error["param"] == param
        assert set(error) >= {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error"
        assert gw.services.fleet.instances() == []  # nothing was started for bad input


async def test_other_endpoints_check_their_fields_and_paths(tmp_path: Path) -> None:
    embedder = fake_model("fake-embed", embedding=True, tier=None)
    settings = gateway_settings(tmp_path, curated=[fake_model("fake"), embedder])
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        missing_prompt = await client.post("/v1/completions", json={"model": "fake"})
        assert missing_prompt.json()["error"]["param"] == "prompt"
        bad_input = await client.post("/v1/embeddings", json={"model": "fake", "input": 3})
        assert bad_input.json()["error"]["param"] == "input"
        nowhere = await client.post("/v1/nowhere", json={})
        assert nowhere.status_code == 404
        assert nowhere.json()["error"]["code"] == "not_found"
        wrong_method = await client.get("/v1/chat/completions")
        assert wrong_method.status_code == 405
        assert "error" in wrong_method.json()
        chunked = await client.post(
            "/v1/chat/completions",
            content=_chunks(b'{"model": "fake", "messages": 1}'),
            headers={"content-type": "application/json"},
        )
        assert chunked.json()["error"]["param"] == "messages"
        # Regression: embeddings asked of a chat-only model cold-started it only to fail (502
        # from llama-server's 501); now a 400 naming a model that can embed, nothing started.
        chat_only = await client.post("/v1/embeddings", json={"model": "fake", "input": ["a"]})
        assert chat_only.status_code == 400
        assert "models that can: fake-embed" in chat_only.json()["error"]["message"]
        assert gw.services.fleet.instances() == []
        no_chat = await client.post(
            "/v1/chat/completions",
            json={"model": "fake-embed", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert no_chat.status_code == 400
        assert "only answers /v1/embeddings" in no_chat.json()["error"]["message"]
        embedded = await client.post("/v1/embeddings", json={"model": "auto", "input": ["a"]})
        assert embedded.status_code == 200, embedded.text
        assert embedded.headers["x-modelyard-model"] == "fake-embed"
        assert embedded.json()["data"][0]["embedding"]


async def _chunks(data: bytes) -> Any:
    for i in range(0, len(data), 5):
        yield data[i : i + 5]


async def test_unknown_model_is_a_404_listing_the_closest_names(tmp_path: Path) -> None:
    settings = gateway_settings(
        tmp_path, curated=[fake_model("qwen-coder-7b"), fake_model("gemma-3-270m")]
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        body = {"model": "qwen-coder-8b", "messages": [{"role": "user", "content": "x"}]}
        reply = await client.post("/v1/chat/completions", json=body)
        assert reply.status_code == 404
        error = reply.json()["error"]
        assert (error["code"], error["param"], error["src"]) == (
            "model_not_found",
            "model",
            "gateway",
        )
        assert error["close"][0] == "qwen-coder-7b"
        assert "qwen-coder-7b" in error["message"]


async def test_models_list_has_models_instances_and_aliases(tmp_path: Path) -> None:
    settings = gateway_settings(
        tmp_path,
        curated=[fake_model("fake", roles={"code": 80}), fake_model("off", enabled=False)],
        gateway={"aliases": {"coder": "role:code"}},
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        await gw.services.fleet.create("fake", {"display_name": "Pirate"})
        listing = (await client.get("/v1/models")).json()
        by_id = {entry["id"]: entry["modelyard"] for entry in listing["data"]}
        assert set(by_id) == {"fake", "fake:01", "coder"}
        assert by_id["fake"]["roles"] == {"code": 80}
        assert by_id["fake"]["instances"] == ["fake:01"]
        assert by_id["fake:01"]["display_name"] == "Pirate"
        assert by_id["coder"] == {"kind": "alias", "target": "role:code"}


async def test_api_keys(tmp_path: Path) -> None:
    settings = gateway_settings(
        tmp_path,
        curated=[fake_model("fake")],
        gateway={"api_keys": [{"name": "app", "key": KEY}]},
    )
    body = {"model": "fake", "messages": [{"role": "user", "content": "x"}]}
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        missing = await client.post("/v1/chat/completions", json=body)
        assert missing.status_code == 401
        assert missing.json()["error"]["type"] == "authentication_error"
        wrong = await client.post(
            "/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-wrong-key"}
        )
        assert wrong.status_code == 401
        listing = await client.get("/v1/models")
        assert listing.status_code == 401
        right = await client.post(
            "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"}
        )
        assert right.status_code == 200, right.text
        assert (await client.get("/health")).status_code == 200  # health needs no key
