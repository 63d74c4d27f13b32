"""The documented example config loads, and bad values get one message naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.errors import ConfigError
from modelyard.settings import load_settings

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
