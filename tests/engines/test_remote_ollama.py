"""The remote and Ollama engines' descriptions: URLs, plans, /api/ps, OLLAMA_HOST."""

from __future__ import annotations

import json

import pytest

from modelyard.catalog.build import remote_entry
from modelyard.catalog.model import Model
from modelyard.engines.base import LaunchSpec
from modelyard.engines.ollama import OllamaEngine, loaded_size
from modelyard.engines.remote import RemoteEngine, base_url, is_local
from modelyard.errors import EngineError, ExternalUrlRefused
from modelyard.settings import CuratedModel, OllamaSettings, RemoteSettings, ollama_host


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:1234/v1", True),
        ("http://localhost:8080", True),
        ("http://[::1]:8080/v1", True),
        ("http://192.168.1.20:1234/v1", True),
        ("http://10.0.0.5/v1", True),
        ("https://api.openai.com/v1", False),
        ("https://8.8.8.8/v1", False),
        ("http://lmstudio.lan:1234/v1", False),  # names are not resolved: external
    ],
)
def test_local_or_external(url: str, local: bool) -> None:
    assert is_local(url) is local


def test_remote_plan_is_attached_and_carries_the_key_variable_not_the_key() -> None:
    model = Model(
        id="lab",
        name="lab",
        source="curated",
        engine="remote",
        url="http://127.0.0.1:1234/v1/",
        served_name="gpt-x",
        api_key_env="LAB_KEY",
    )
    plan = RemoteEngine(RemoteSettings()).plan(LaunchSpec("lab:01", model, 1, alias="lab:01"))
    assert plan.attached and plan.argv == () and plan.base_url == "http://127.0.0.1:1234"
    assert plan.health_path == "/v1/models" and plan.served_name == "gpt-x"
    assert plan.api_key_env == "LAB_KEY"
    assert base_url("http://h:1/api/v1") == "http://h:1/api"


def test_remote_refusals_name_what_to_change() -> None:
    engine = RemoteEngine(RemoteSettings())
    cloud = Model(id="c", name="c", source="curated", engine="remote", url="https://8.8.8.8/v1")
    with pytest.raises(ExternalUrlRefused, match=r"remote\.allow_external: true"):
        engine.plan(LaunchSpec("c:01", cloud, 1, alias="c:01"))
    assert (
        RemoteEngine(RemoteSettings(allow_external=True))
        .plan(LaunchSpec("c:01", cloud, 1, alias="c:01"))
        .base_url
        == "https://8.8.8.8"
    )
    bare = Model(id="b", name="b", source="curated", engine="remote")
    with pytest.raises(EngineError, match="no `url`"):
        engine.plan(LaunchSpec("b:01", bare, 1, alias="b:01"))


def test_remote_models_become_curated_entries_with_safe_ids() -> None:
    entry = CuratedModel(id="lab", engine="remote", url="http://127.0.0.1:1/v1", tier="fast")
    derived = remote_entry(entry, "org/Model Name:7b")
    assert derived.id == "lab--org-Model-Name-7b" and derived.served_name == "org/Model Name:7b"
    assert derived.url == entry.url and derived.tier == "fast"


def test_ollama_plan_loads_and_unloads_with_keep_alive() -> None:
    model = Model(id="q", name="q", source="curated", engine="ollama", served_name="qwen:0.5b")
    engine = OllamaEngine(OllamaSettings(host="http://127.0.0.1:11434"))
    plan = engine.plan(LaunchSpec("q:01", model, 1, alias="q:01"))
    assert plan.attached and plan.base_url == "http://127.0.0.1:11434"
    assert plan.load is not None and plan.unload is not None
    assert (plan.load.method, plan.load.path) == ("POST", "/api/generate")
    assert json.loads(plan.load.body) == {"model": "qwen:0.5b", "keep_alive": -1}
    assert json.loads(plan.unload.body) == {"model": "qwen:0.5b", "keep_alive": 0}
    assert plan.models_path == "/api/ps" and plan.served_name == "qwen:0.5b"


def test_ollama_ps_sizes_of_one_model() -> None:
    body = json.dumps(
        {"models": [{"name": "a:1b", "model": "a:1b", "size": 10, "size_vram": 7}]}
    ).encode()
    assert loaded_size(body, "a:1b") == {"size": 10.0, "size_vram": 7.0}
    assert loaded_size(body, "b:1b") is None and loaded_size(b"nope", "a:1b") is None


@pytest.mark.parametrize(
    ("value", "url"),
    [
        (None, "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:11500", "http://127.0.0.1:11500"),
        ("http://gpu-box:11434/", "http://gpu-box:11434"),
        ("https://ollama.example", "https://ollama.example:443"),
        ("http://gpu-box", "http://gpu-box:80"),
    ],
)
def test_ollama_host_as_ollama_reads_it(value: str | None, url: str) -> None:
    assert ollama_host({} if value is None else {"OLLAMA_HOST": value}) == url
