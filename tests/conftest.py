"""Shared fixtures: every test runs with its own data dir, HOME and model stores."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.bundle.models import CHAT, EMBEDDING, FAST, Bundled, bundled_path
from modelyard.services import Services, build_services
from modelyard.settings import Settings, default_bundle_dir, load_settings

# The bundled models live outside every test's temporary HOME: read where they are once.
BUNDLE_DIR = default_bundle_dir(os.environ)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every location modelyard reads at temporary folders (no test sees the real HOME)."""
    home = tmp_path / "home"
    home.mkdir()
    for name in ("MODELYARD_CONFIG", "HF_HOME", "MODELYARD_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MODELYARD_BUNDLE_DIR", str(BUNDLE_DIR))
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama"))
    return home


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with discovery of the bundled default model off (tests that want it say so)."""
    return load_settings(discovery={"default_model": False})


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.close()


@pytest.fixture(scope="session")
def gemma_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Gemma 3 270M Q4_K_M GGUF (base model, no chat template), once per session."""
    from tests.support.gemma import assemble_gemma

    return assemble_gemma(tmp_path_factory.mktemp("gemma"))


def _bundled(model: Bundled) -> Path:
    """A bundled model as ``scripts/setup.sh`` assembled it; the tests fail naming the step
    when it has not run."""
    path = bundled_path(BUNDLE_DIR, model)
    if not path.is_file():
        pytest.fail(f"{path} is missing: run scripts/setup.sh (python -m modelyard.bundle)")
    return path


@pytest.fixture(scope="session")
def qwen_path() -> Path:
    """The bundled chat model, Qwen2.5-Coder-0.5B-Instruct Q4_K_M."""
    return _bundled(CHAT)


@pytest.fixture(scope="session")
def smollm_path() -> Path:
    """The bundled fast model, SmolLM2-135M-Instruct Q4_1: the quickest real chat model."""
    return _bundled(FAST)


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The bundled embedding model, all-MiniLM-L6-v2 converted to GGUF (F16, mean pooling)."""
    return _bundled(EMBEDDING)
