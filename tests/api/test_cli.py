"""The CLI: profiles on the folder directly, the audit log from the store, and activate,
recommend and compat through a running manager."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from modelyard.cli.app import app
from tests.api.conftest import ADMIN_KEY, api_settings, served_in_thread
from tests.support.processes import free_port


def run(config: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_profiles_and_audit_on_files_and_store(tmp_path: Path) -> None:
    settings = api_settings(tmp_path / "cfg")
    assert settings.config_file is not None
    config = settings.config_file
    listing = run(config, "profiles", "list")
    assert "development" in listing and "unknown model" in listing
    profile = tmp_path / "duo.yaml"
    profile.write_text(yaml.safe_dump({"name": "duo", "enabled_models": ["alpha"]}))
    assert "created profile duo" in run(config, "profiles", "create", str(profile))
    assert "enabled_models" in run(config, "profiles", "show", "duo")
    assert "deleted profile duo" in run(config, "profiles", "delete", "duo")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "bad", "enabled_models": ["ghost"]}))
    failed = CliRunner().invoke(app, ["--config", str(config), "profiles", "create", str(bad)])
    assert failed.exit_code != 0
    audit = run(config, "audit", "--action", "profile", "--json")
    assert '"profile.delete"' in audit and '"profile.create"' in audit


def test_activate_recommend_and_compat_through_the_manager(tmp_path: Path) -> None:
    settings = api_settings(tmp_path / "cfg", server={"host": "127.0.0.1", "port": free_port()})
    assert settings.config_file is not None
    config = settings.config_file
    profile = tmp_path / "solo.yaml"
    profile.write_text(
        yaml.safe_dump(
            {"name": "solo", "enabled_models": ["beta"], "instances": [{"model": "beta"}]}
        )
    )
    run(config, "profiles", "create", str(profile))
    with served_in_thread(settings):
        planned = run(config, "profiles", "activate", "solo", "--dry-run")
        assert "would change profile solo" in planned and "disable: alpha" in planned
        done = run(config, "profiles", "activate", "solo")
        assert "created: beta:01" in done
        assert "beta" in run(config, "recommend", "8", "speed")
        assert "fits" in run(config, "compat", "beta", "--ctx", "2048")


def test_modelyard_api_key_is_sent_as_the_admin_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    keys = {"admin_keys": [{"name": "alice", "key": ADMIN_KEY}]}
    settings = api_settings(tmp_path / "cfg", server={"host": "127.0.0.1", "port": port}, api=keys)
    assert settings.config_file is not None
    config = settings.config_file
    with served_in_thread(settings):
        refused = CliRunner().invoke(app, ["--config", str(config), "instances", "list"])
        assert "needs an admin key" in str(refused.exception)
        monkeypatch.setenv("MODELYARD_API_KEY", ADMIN_KEY)
        run(config, "instances", "list")
