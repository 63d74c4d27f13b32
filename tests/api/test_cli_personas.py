"""Personas from the CLI with no manager running (the store directly), and the audit log as
the CLI shows it: each changed field old → new, one actor name for one caller."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli.app import app
from modelyard.cli.audit import change_lines
from modelyard.errors import BadRequest, PresetNotFound
from modelyard.profiles.presets import BUILTIN
from modelyard.store.audit import AuditRow, FieldChange, field_changes
from tests.api.conftest import ADMIN_KEY, api_settings
from tests.support.processes import free_port

CODER = next(p.prompt for p in BUILTIN if p.name == "coder")


def _config(tmp_path: Path, **sections: object) -> Path:
    settings = api_settings(
        tmp_path / "cfg", server={"host": "127.0.0.1", "port": free_port()}, **sections
    )
    assert settings.config_file is not None
    return settings.config_file


def run(config: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_personas_offline_set_list_presets_and_audit(tmp_path: Path) -> None:
    config = _config(tmp_path)
    run(config, "instances", "create", "beta", "--name", "Bea")
    assert run(config, "instances", "set", "beta:01", "--preset", "coder", "--name", "Coder") == (
        "beta:01: name 'Coder'; system prompt 'You are an expert programmer. Write cle…'\n"
    )
    listed = json.loads(run(config, "instances", "list", "--json"))
    assert (listed[0]["config"]["display_name"], listed[0]["config"]["system_prompt"]) == (
        "Coder",
        CODER,
    )
    table = run(config, "instances", "list")
    assert "Coder" in table and '"You are an expert programmer. Write cle…"' in table
    assert run(config, "instances", "set", "beta:01", "--name", "", "--no-web-search") == (
        "beta:01: name (none); web search off\n"
    )
    assert "Concise Assistant" in run(config, "presets", "list")

    entries = json.loads(run(config, "audit", "--target", "beta:01", "--json"))
    assert [e["action"] for e in entries] == [
        "instance.update",
        "instance.update",
        "instance.create",
    ]
    assert {e["actor"] for e in entries} == {"local"}  # as a manager names a keyless caller
    assert entries[1]["changes"] == [
        {"field": "display_name", "old": "Bea", "new": "Coder"},
        {"field": "system_prompt", "old": None, "new": CODER},
    ]
    assert entries[0]["changes"] == [{"field": "display_name", "old": "Coder", "new": None}]


def test_offline_changes_are_recorded_under_the_admin_key_s_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prevents the audit log naming one user `cli` offline and by their key's name (or
    `local`) through the manager."""
    config = _config(tmp_path, api={"admin_keys": [{"name": "alice", "key": ADMIN_KEY}]})
    monkeypatch.setenv("MODELYARD_API_KEY", ADMIN_KEY)
    run(config, "instances", "create", "alpha")
    entries = json.loads(run(config, "audit", "--json"))
    assert [(e["actor"], e["action"]) for e in entries] == [("alice", "instance.create")]


def test_preset_mistakes_are_refused_before_anything_changes(tmp_path: Path) -> None:
    config = _config(tmp_path)
    unknown = CliRunner().invoke(app, ["--config", str(config), "instances", "create", "beta",
                                       "--preset", "nope"])  # fmt: skip
    assert isinstance(unknown.exception, PresetNotFound)
    assert json.loads(run(config, "instances", "list", "--json")) == []
    run(config, "instances", "create", "beta")
    nothing = CliRunner().invoke(app, ["--config", str(config), "instances", "set", "beta:01"])
    assert isinstance(nothing.exception, BadRequest)


def test_field_changes_name_each_changed_leaf() -> None:
    old = {"display_name": None, "engine_args": {"ctx": 2048, "parallel": 1}, "pinned": False}
    new = {"display_name": "Ada", "engine_args": {"ctx": 4096, "parallel": 1}, "pinned": False}
    assert field_changes(old, new) == [
        FieldChange("display_name", None, "Ada"),
        FieldChange("engine_args.ctx", 2048, 4096),
    ]
    assert field_changes("stopped", "running") == [FieldChange("", "stopped", "running")]
    assert field_changes(None, {"a": 1, "b": {"c": 2}}) == [
        FieldChange("a", None, 1),
        FieldChange("b.c", None, 2),
    ]
    assert field_changes(old, old) == []


def test_the_audit_table_cuts_old_and_new_each_on_its_own() -> None:
    """Prevents old and new cut at the same prefix: two long settings objects that differ
    only past their first 80 characters showed as the same text twice."""
    long = "x" * 100
    row = AuditRow(
        id=1,
        at="now",
        actor="local",
        action="instance.update",
        target="m:01",
        old={"autostart": False, "display_name": "A", "system_prompt": long, "web_search": False},
        new={"autostart": False, "display_name": "A", "system_prompt": long, "web_search": True},
    )
    assert change_lines(row) == ["web_search: false → true"]
    created = AuditRow(
        2, "now", "local", "instance.create", "m:02", None, {"port": 1, "pinned": False}
    )
    assert change_lines(created) == ["port: 1"]
    cut = AuditRow(3, "now", "local", "profile.update", "p", {"d": long}, {"d": "short"})
    assert change_lines(cut) == [f'd: "{"x" * 38}… → "short"']
