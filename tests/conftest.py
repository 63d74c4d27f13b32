"""Shared fixtures: every test runs with its own data dir, HOME and model stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.services import Services, build_services
from modelyard.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every location modelyard reads at temporary folders (no test sees the real HOME)."""
    home = tmp_path / "home"
    home.mkdir()
    for name in ("MODELYARD_CONFIG", "HF_HOME", "MODELYARD_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
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
    """The real Gemma 3 270M Q4_K_M GGUF, assembled once per session."""
    from modelyard.catalog.default_model import assemble_default_model

    return assemble_default_model(tmp_path_factory.mktemp("gemma"))
