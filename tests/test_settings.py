"""The documented example config loads, and bad values get one message naming the key."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelyard.cli.app import main
from modelyard.errors import ConfigError
from modelyard.settings import debug_enabled, load_settings, tool_model_folders, with_flags

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "modelyard.example.yaml"


def test_the_example_config_loads() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.fleet.port_range == (8200, 8299)
    assert settings.curated[0].engine == "command"
    assert settings.gateway.timeouts.first_byte_s == 300
    assert settings.config_file == EXAMPLE


def test_environment_wins_over_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_FLEET__START_TIMEOUT_S", "7.5")
    assert load_settings(EXAMPLE).fleet.start_timeout_s == 7.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fleet:\n  start_timeout_s: soon\n", "key 'fleet.start_timeout_s'"),
        ("fleet:\n  port_range: [9000, 8000]\n", "key 'fleet.port_range'"),
        ("nonsense: 1\n", "key 'nonsense'"),
        ("fleet: [1, 2\n", "not valid YAML at line"),
        ("- a list\n", "expected a mapping"),
    ],
)
def test_a_bad_file_names_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=expected) as caught:
        load_settings(path)
    assert str(path) in caught.value.message and "\n" not in caught.value.message


def test_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "none.yaml")


def test_other_tools_model_folders_come_below_every_modelyard_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HF_HUB_CACHE, else HF_HOME/hub, and OLLAMA_MODELS fill what modelyard leaves unset."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OLLAMA_MODELS", "~/ollama")
    found = load_settings().discovery
    assert (found.hf_cache, found.ollama_models) == (tmp_path / "hub", Path.home() / "ollama")
    monkeypatch.setenv("HF_HUB_CACHE", "")  # empty: unset
    assert load_settings().discovery.hf_cache == tmp_path / "home" / "hub"

    config = tmp_path / "modelyard.yaml"
    config.write_text(f"discovery:\n  hf_cache: {tmp_path / 'file'}\n  hf: false\n")
    from_file = load_settings(config).discovery
    assert (from_file.hf_cache, from_file.hf) == (tmp_path / "file", False)
    assert from_file.ollama_models == Path.home() / "ollama"
    monkeypatch.setenv("MODELYARD_DISCOVERY__HF_CACHE", str(tmp_path / "env"))
    assert load_settings(config).discovery.hf_cache == tmp_path / "env"

    assert tool_model_folders({}) == {}


def test_the_cli_admin_key_comes_from_modelyard_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().api_key is None
    monkeypatch.setenv("MODELYARD_API_KEY", "admin-key-0123456789")
    settings = load_settings()
    assert settings.api_key == "admin-key-0123456789"
    assert "admin-key" not in repr(settings)


def test_modelyard_debug_lets_the_traceback_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read apart from the settings: it must work when they are what fails to load."""
    argv = ["modelyard", "--config", str(tmp_path / "missing.yaml"), "stats"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2  # one line: ConfigError
    monkeypatch.setenv("MODELYARD_DEBUG", "1")
    with pytest.raises(ConfigError, match="does not exist"):
        main()
    assert debug_enabled({"MODELYARD_DEBUG": "1"})
    assert not debug_enabled({"MODELYARD_DEBUG": "true"})  # only 1, as documented
    assert not debug_enabled({})


def test_the_cli_flags_win_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prevents ``MODELYARD_DATA_DIR`` (set here by the autouse fixture) beating
    ``--data-dir``, and ``MODELYARD_URL`` beating ``--url``: load_settings' overrides rank
    below the environment, as the file's values do."""
    monkeypatch.setenv("MODELYARD_URL", "http://127.0.0.1:1/")
    from_env = load_settings()
    assert from_env.url == "http://127.0.0.1:1"  # the trailing slash dropped
    flagged = with_flags(from_env, data_dir=tmp_path / "flag", url="http://127.0.0.1:2")
    assert (flagged.data_dir, flagged.url) == (tmp_path / "flag", "http://127.0.0.1:2")
    assert flagged.runtime_file == tmp_path / "flag" / "serve.json"
    assert with_flags(from_env) is from_env
    with pytest.raises(ConfigError, match="--url 'ftp://x': expected an http:// or https://"):
        with_flags(from_env, url="ftp://x")
    monkeypatch.setenv("MODELYARD_URL", "127.0.0.1:9000")
    with pytest.raises(ConfigError, match="key 'url': Value error, expected an http://"):
        load_settings()
