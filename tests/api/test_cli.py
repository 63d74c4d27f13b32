"""The CLI: profiles on the folder directly, the audit log from the store, activate,
recommend and compat through a running manager, and the instance commands both ways."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from modelyard.cli.app import app
from modelyard.cli.control import HttpControl, LocalControl
from modelyard.cli.manager import ManagerClient
from modelyard.errors import FleetError
from modelyard.services import Services, build_services
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
        shown = run(config, "deployment")
        assert "cpu (cpu, config)" in shown and "8 model(s) at once" in shown
        assert "enforced" in shown and "gpu-96gb: " in shown and "does not fit" in shown


def test_instance_commands_offline_and_through_the_manager(tmp_path: Path) -> None:
    """Each instance command is written once over InstanceControl: the same commands, the
    same output, whether the store is used directly or a manager runs."""
    settings = api_settings(tmp_path / "cfg", server={"host": "127.0.0.1", "port": free_port()})
    assert settings.config_file is not None
    config = settings.config_file
    url = f"http://127.0.0.1:{settings.server.port}"

    assert "created beta:01 on port" in run(config, "instances", "create", "beta")
    listed = json.loads(run(config, "instances", "list", "--json"))
    assert [(v["id"], v["state"]) for v in listed] == [("beta:01", "stopped")]
    assert run(config, "instances", "logs", "beta:01") == ""
    for action in ("start", "stop", "restart"):
        refused = CliRunner().invoke(app, ["--config", str(config), "instances", action, "beta:01"])
        assert refused.exit_code == 1
        assert isinstance(refused.exception, FleetError)
        assert refused.exception.message == (
            f"no modelyard serve is running at {url}; start one with `modelyard serve`"
        )
    unknown = CliRunner().invoke(app, ["--config", str(config), "instances", "delete", "x:01"])
    assert unknown.exit_code == 1 and "no instance 'x:01'" in str(unknown.exception)

    with served_in_thread(settings):
        assert "created beta:02 on port" in run(config, "instances", "create", "beta")
        assert "beta:01: ready on port" in run(config, "instances", "start", "beta:01")
        table = run(config, "instances", "list")
        assert "beta:01" in table and "ready" in table and "beta:02" in table
        assert run(config, "instances", "logs", "beta:01", "--lines", "5").strip()
        assert "beta:01: ready on port" in run(config, "instances", "restart", "beta:01")
        assert "beta:01: stopped" in run(config, "instances", "stop", "beta:01")
        assert "deleted beta:02" in run(config, "instances", "delete", "beta:02")

    assert "deleted beta:01" in run(config, "instances", "delete", "beta:01")
    assert json.loads(run(config, "instances", "list", "--json")) == []


def test_both_controls_get_and_update_the_same_instance(tmp_path: Path) -> None:
    """get and update have no command yet; both implementations answer them alike."""
    settings = api_settings(tmp_path / "cfg", server={"host": "127.0.0.1", "port": free_port()})

    @contextmanager
    def local_services() -> Iterator[Services]:
        built = build_services(settings)
        try:
            yield built
        finally:
            built.close()

    with (
        ManagerClient(settings) as client,
        LocalControl(local_services, client.not_running) as local,
    ):
        created = local.create("alpha", {"display_name": "A"}, 1)
        offline = local.update("alpha:01", {"idle_ttl": 30})
        assert local.get("alpha:01") == offline
    assert (offline["config"]["display_name"], offline["config"]["idle_ttl"]) == ("A", 30)
    assert created[0]["config"]["idle_ttl"] is None

    with served_in_thread(settings), ManagerClient(settings) as client:
        assert client.running()
        remote = HttpControl(client)
        online = remote.update("alpha:01", {"idle_ttl": 60})
        assert remote.get("alpha:01") == online
        assert online["config"] == {**offline["config"], "idle_ttl": 60}


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
