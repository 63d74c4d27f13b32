"""Issue 10, item 8: security of a manager others can reach.

- With only ``api.admin_keys`` set, ``--host 0.0.0.0`` was accepted and ``/v1`` was open to
  anyone (and cold-started models): now refused unless ``/v1`` has keys or
  ``gateway.public_inference`` says so.
- Keys given through ``MODELYARD_*`` variables reached every backend's environment: children
  now get a scrubbed environment.
- ``/metrics`` can be put behind ``api.metrics_keys``; ``/health`` tells anonymous callers only
  up or down.

Every test runs the real parts: the CLI as a subprocess, the app on a real port, the fake
backend through the ``command`` engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from modelyard.api.auth import check_bind
from modelyard.app import create_app
from modelyard.errors import ConfigError
from modelyard.fleet.environment import MARK, looks_secret
from modelyard.services import build_services
from modelyard.settings import load_settings
from tests.gateway.harness import fake_model, gateway_settings, running

ROOT = Path(__file__).resolve().parents[2]
ADMIN = {"name": "ops", "key": "admin-key-0123456789"}
INFERENCE = {"name": "app", "key": "inference-key-0123456789"}
METRICS = {"name": "prometheus", "key": "metrics-key-0123456789"}


def _bearer(key: dict[str, str]) -> dict[str, str]:
    return {"authorization": f"Bearer {key['key']}"}


def _serve(config: dict[str, Any], folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "modelyard.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {
        **os.environ,
        "MODELYARD_CONFIG": str(path),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    command = [sys.executable, "-c", "from modelyard.cli.app import main; main()", "serve"]
    return subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_a_public_bind_with_admin_keys_only_is_refused(tmp_path: Path) -> None:
    """Prevents ``modelyard serve --host 0.0.0.0`` with only ``api.admin_keys`` from serving
    an open ``/v1`` to anyone who can reach the address (and letting them load models)."""
    config = {
        "discovery": {"default_model": False, "hf": False, "ollama": False},
        "api": {"admin_keys": [ADMIN]},
    }
    refused = _serve(config, tmp_path / "refused", "--host", "0.0.0.0")
    assert refused.returncode == 2, refused.stderr
    message = " ".join(refused.stderr.split())  # one line, wrapped by the console at 80
    assert message.startswith("error: refusing to listen on 0.0.0.0: /v1 has no API key")
    assert "gateway.api_keys" in message and "gateway.public_inference" in message
    assert "Traceback" not in refused.stderr
    public = {**config, "server": {"host": "0.0.0.0"}}
    with pytest.raises(ConfigError, match="/v1 has no API key"):
        check_bind(gateway_settings(tmp_path / "app", **public))
    services = build_services(gateway_settings(tmp_path / "app2", **public))
    try:
        with pytest.raises(ConfigError, match="/v1 has no API key"):
            create_app(services)  # the same check guards an app built another way
    finally:
        services.close()
    said = gateway_settings(tmp_path / "said", **public, gateway={"public_inference": True})
    check_bind(said)
    keyed = gateway_settings(tmp_path / "keyed", **public, gateway={"api_keys": [INFERENCE]})
    check_bind(keyed)
    with pytest.raises(ConfigError, match=r"api\.admin_keys"):
        check_bind(load_settings(server={"host": "0.0.0.0"}, gateway={"public_inference": True}))


def test_a_bad_public_inference_value_is_one_clear_error(tmp_path: Path) -> None:
    """Prevents a typo in the new flag from being read as "public" or from a traceback."""
    config = {"gateway": {"public_inference": "maybe"}}
    failed = _serve(config, tmp_path)
    assert failed.returncode == 2, failed.stderr
    message = " ".join(failed.stderr.split())
    assert "key 'gateway.public_inference'" in message and "Traceback" not in failed.stderr


async def test_backends_get_no_modelyard_variables_and_no_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prevents keys given to modelyard through ``MODELYARD_*`` variables (and other secrets
    of its environment) from leaking into every backend's environment, while a variable a
    model asks for by name (``pass_env``) still reaches it."""
    monkeypatch.setenv("MODELYARD_GATEWAY__API_KEYS", json.dumps([INFERENCE]))
    monkeypatch.setenv("MODELYARD_API__ADMIN_KEYS", json.dumps([ADMIN]))
    monkeypatch.setenv("MODELYARD_API_KEY", ADMIN["key"])
    monkeypatch.setenv("HF_TOKEN", "hf-token-value")
    monkeypatch.setenv("OPENAI_API_KEY", "openai-key-value")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.setenv("PLAIN_SETTING", "kept")
    dump = f"--env-file {tmp_path}/env-${{INSTANCE_ID}}.json"
    curated = [
        fake_model("plain", dump),
        fake_model("asks", dump, pass_env=["HF_TOKEN"]),
    ]
    settings = gateway_settings(tmp_path, curated=curated)
    assert settings.gateway.api_keys[0].name == "app"  # the keys came from the environment
    admin = _bearer(ADMIN)
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        for model in ("plain", "asks"):
            await gw.services.fleet.create(model, actor="test")
            started = await client.post(f"/api/instances/{model}:01/start", headers=admin)
            assert started.status_code == 200, started.text
    plain = json.loads((tmp_path / "env-plain:01.json").read_text())
    asks = json.loads((tmp_path / "env-asks:01.json").read_text())
    for env in (plain, asks):
        assert [name for name in env if name.startswith("MODELYARD_")] == [MARK]
        leaked = [k for k in (ADMIN["key"], INFERENCE["key"]) if any(k in v for v in env.values())]
        assert leaked == []
        assert "OPENAI_API_KEY" not in env
        assert env["TOKENIZERS_PARALLELISM"] == "false" and env["PLAIN_SETTING"] == "kept"
        assert env["PATH"] == os.environ["PATH"]
    assert "HF_TOKEN" not in plain
    assert asks["HF_TOKEN"] == "hf-token-value"
    assert plain[MARK].startswith("plain:01/") and plain[MARK] != asks[MARK]


def test_secret_looking_names() -> None:
    assert all(
        map(looks_secret, ("HF_TOKEN", "OPENAI_API_KEY", "PGPASSWORD", "aws_secret_access_key"))
    )
    assert not any(map(looks_secret, ("TOKENIZERS_PARALLELISM", "PATH", "KEYBOARD_LAYOUT")))


def test_a_bad_pass_env_name_names_the_key(tmp_path: Path) -> None:
    """Prevents a malformed ``pass_env`` entry from reaching the spawn as a variable name."""
    with pytest.raises(ConfigError, match=r"key 'curated\.0\.pass_env\.0'"):
        load_settings(curated=[fake_model("x", pass_env=["NOT A NAME"])])


async def test_metrics_behind_a_key(tmp_path: Path) -> None:
    """Prevents ``/metrics`` (model names, traffic, errors) from being readable by anyone
    once ``api.metrics_keys`` is set; the scraper's key reads it, an inference key does not."""
    settings = gateway_settings(
        tmp_path,
        curated=[fake_model("fake")],
        api={"admin_keys": [ADMIN], "metrics_keys": [METRICS]},
        gateway={"api_keys": [INFERENCE]},
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        missing = await client.get("/metrics")
        assert missing.status_code == 401
        error = missing.json()["error"]
        assert error["code"] == "invalid_api_key" and "metrics key" in error["message"]
        for wrong in ({"authorization": "Bearer nope-nope-nope"}, _bearer(INFERENCE)):
            refused = await client.get("/metrics", headers=wrong)
            assert refused.status_code == 401
            assert refused.json()["error"]["message"] == "unknown metrics key"
        for allowed in (_bearer(METRICS), {"x-api-key": METRICS["key"]}, _bearer(ADMIN)):
            scraped = await client.get("/metrics", headers=allowed)
            assert scraped.status_code == 200, scraped.text
            assert scraped.headers["content-type"].startswith("text/plain")
            assert "modelyard_" in scraped.text


async def test_metrics_stay_open_without_metrics_keys(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path, curated=[fake_model("fake")])
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        assert (await client.get("/metrics")).status_code == 200


async def test_health_tells_anonymous_callers_only_up_or_down(tmp_path: Path) -> None:
    """Prevents ``/health`` from listing instances, their load and their last errors to
    anyone without a key once keys are configured."""
    settings = gateway_settings(
        tmp_path,
        curated=[fake_model("fake")],
        api={"admin_keys": [ADMIN]},
        gateway={"api_keys": [INFERENCE]},
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        await gw.services.fleet.create("fake", actor="test")
        started = await client.post("/api/instances/fake:01/start", headers=_bearer(ADMIN))
        assert started.status_code == 200, started.text
        for anonymous in ({}, {"authorization": "Bearer wrong-key-123"}, {"authorization": "x"}):
            answer = await client.get("/health", headers=anonymous)
            assert answer.status_code == 200
            assert answer.json() == {"status": "ok"}
        for insider in (_bearer(INFERENCE), _bearer(ADMIN)):
            detailed = (await client.get("/health", headers=insider)).json()
            assert detailed["status"] == "ok"
            assert detailed["instances"]["fake:01"]["state"] == "ready"
