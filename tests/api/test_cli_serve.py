"""The CLI finds its server: ``modelyard serve --port P`` in one shell and ``modelyard
instances ...`` in another, sharing only the config file (no MODELYARD_* variable), talk
through the runtime file the server writes in the data folder. Both are real subprocesses of
the installed ``modelyard`` program; the instances are fake backends through the ``command``
engine.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from modelyard.cli.manager import Location, ManagerClient
from modelyard.errors import FleetError
from modelyard.profiles.presets import BUILTIN
from modelyard.settings import load_settings
from tests.api.cli_processes import (
    Serve,
    clean_env,
    cli,
    ok,
    start_serve,
    stop_serve,
    wait_until,
    watched,
    write_config,
)
from tests.support.processes import free_port

CONCISE = next(p.prompt for p in BUILTIN if p.name == "concise")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Serve]]:
    """One ``modelyard serve --port P`` (P is no port of the config) for the module's
    tests; its config file is the only thing the CLI shares with it."""
    config = write_config(tmp_path_factory.mktemp("served"))
    server = start_serve(config)
    try:
        yield config, server
    finally:
        left = stop_serve(server)
        assert not left, f"processes left running after serve stopped: {left}"


def _instances(server: Serve) -> dict[str, dict[str, Any]]:
    with server.client() as client:
        views = client.get("/api/instances").json()
    return {view["id"]: view for view in views}


def test_instance_commands_reach_the_server_on_another_port(
    served: tuple[Path, Serve], tmp_path: Path
) -> None:
    """Prevents `instances create` writing the database behind a server on a port the config
    does not name (the CLI probed the configured port, found nothing and wrote the store
    itself, and the running server never saw the instances). The CLI must not even open the
    store while the manager runs: every change is the server's."""
    config, server = served
    opened = tmp_path / "opened.txt"
    created = cli(
        config, "instances", "create", "fake", "--name", "Ada", "--preset", "concise",
        prefix=watched(opened),
    )  # fmt: skip
    assert "created fake:01 on port" in ok(created)
    changed = cli(
        config, "instances", "set", "fake:01", "--web-search",
        "--system-prompt", "You are Ada, who answers in verse.",
        prefix=watched(opened),
    )  # fmt: skip
    assert ok(changed).strip() == (
        "fake:01: system prompt 'You are Ada, who answers in verse.'; web search on"
    )
    assert not opened.exists(), f"the CLI opened a database: {opened.read_text()}"

    seen = _instances(server)["fake:01"]["config"]
    assert (seen["display_name"], seen["system_prompt"], seen["web_search"]) == (
        "Ada",
        "You are Ada, who answers in verse.",
        True,
    )
    listing = ok(cli(config, "instances", "list"))
    assert "Ada" in listing and '"You are Ada, who answers in verse."' in listing
    assert "+ web search" in listing
    assert "fake:01: ready on port" in ok(cli(config, "instances", "start", "fake:01"))
    audit = ok(cli(config, "audit", "--target", "fake:01"))
    assert "instance.update" in audit and "web_search: false → true" in audit
    entries = json.loads(ok(cli(config, "audit", "--target", "fake:01", "--json")))
    assert {e["actor"] for e in entries} == {"local"}  # the server's name for a keyless caller
    update = next(e for e in entries if e["action"] == "instance.update")
    assert update["changes"] == [
        {
            "field": "system_prompt",
            "old": CONCISE,
            "new": "You are Ada, who answers in verse.",
        },
        {"field": "web_search", "old": False, "new": True},
    ]


def test_create_with_a_preset_and_presets_list_through_the_server(
    served: tuple[Path, Serve],
) -> None:
    config, server = served
    assert "created fake:02 on port" in ok(
        cli(config, "instances", "create", "fake", "--preset", "concise")
    )
    assert _instances(server)["fake:02"]["config"]["system_prompt"] == CONCISE
    presets = json.loads(ok(cli(config, "presets", "list", "--json")))
    assert [p["name"] for p in presets[:3]] == ["concise", "researcher", "coder"]
    assert "Concise Assistant" in ok(cli(config, "presets", "list"))
    unknown = cli(config, "instances", "create", "fake", "--preset", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == (
        "error: no preset 'nope'; `modelyard presets list` shows them"
    )
    both = cli(config, "instances", "set", "fake:02", "--preset", "coder", "--system-prompt", "x")
    assert both.stderr.strip() == "error: give --system-prompt or --preset, not both"
    nothing = cli(config, "instances", "set", "fake:02")
    assert nothing.returncode == 1 and nothing.stderr.startswith("error: nothing to change")


def test_url_and_modelyard_url_win_over_the_runtime_file(
    served: tuple[Path, Serve], tmp_path: Path
) -> None:
    """--url beats MODELYARD_URL beats the runtime file; a named manager that does not
    answer is an error, never a fall back to writing the store."""
    config, server = served
    dead = f"http://127.0.0.1:{free_port()}"
    opened = tmp_path / "opened.txt"
    named = cli(config, "--url", dead, "instances", "create", "fake", prefix=watched(opened))
    assert named.returncode == 1
    assert named.stderr.strip() == (
        f"error: no modelyard serve answers at {dead} (from --url or MODELYARD_URL)"
    )
    from_env = cli(config, "instances", "list", env={**clean_env(), "MODELYARD_URL": dead})
    assert from_env.returncode == 1 and dead in from_env.stderr
    both = cli(
        config, "--url", server.url, "instances", "list", "--json",
        env={**clean_env(), "MODELYARD_URL": dead},
    )  # fmt: skip
    assert "fake:01" in {view["id"] for view in json.loads(ok(both))}
    assert not opened.exists(), f"the CLI opened a database: {opened.read_text()}"
    bad = cli(config, "--url", "localhost:8100", "instances", "list")
    assert bad.returncode == 2 and "--url 'localhost:8100': expected an http://" in bad.stderr


def test_commands_that_change_the_store_go_through_the_server_or_refuse(
    served: tuple[Path, Serve], tmp_path: Path
) -> None:
    """models set, profiles create and scan change what the server serves: they go through
    its /api (its catalog changes at once); scan --forget has no /api and says so."""
    config, server = served
    opened = tmp_path / "opened.txt"
    shown = ok(cli(config, "models", "set", "fake", "--name", "Fakey", prefix=watched(opened)))
    assert "Fakey" in shown
    with server.client() as client:
        registry = client.get("/api/models/registry").json()
    assert [m["display_name"] for m in registry["models"]] == ["Fakey"]
    profile = tmp_path / "solo.yaml"
    profile.write_text(yaml.safe_dump({"name": "solo", "enabled_models": ["fake"]}))
    assert "created profile solo" in ok(
        cli(config, "profiles", "create", str(profile), prefix=watched(opened))
    )
    assert "1 models" in ok(cli(config, "scan", prefix=watched(opened)))
    assert not opened.exists(), f"the CLI opened a database: {opened.read_text()}"
    forget = cli(config, "scan", "--forget", str(tmp_path))
    assert forget.returncode == 1
    assert forget.stderr.strip() == (
        "error: `modelyard scan --forget` works only while no manager runs, and one runs at "
        f"{server.url} (pid {server.process.pid}): stop it first"
    )


def test_advice_errors_are_one_line(served: tuple[Path, Serve]) -> None:
    """Prevents `recommend 8 fastest` printing the manager's raw validation JSON."""
    config, _ = served
    wrong = cli(config, "recommend", "8", "fastest")
    assert (wrong.returncode, wrong.stderr) == (
        1,
        "error: priority 'fastest' is not one of speed, balanced, quality\n",
    )
    zero = cli(config, "recommend", "0")
    assert zero.stderr == "error: memory_gb: Input should be greater than 0\n"
    assert "fake" in ok(cli(config, "recommend", "8", "speed"))


def test_a_second_serve_over_the_same_data_folder_is_refused(
    served: tuple[Path, Serve],
) -> None:
    """Prevents two managers over one store (each would start the other's instances)."""
    config, server = served
    second = cli(config, "serve", "--port", str(free_port()))
    assert second.returncode == 1
    assert second.stderr.startswith(f"error: a modelyard serve (pid {server.process.pid}, started ")
    assert f"already serves this data folder at {server.url}" in second.stderr
    assert len(second.stderr.splitlines()) == 1


def test_serve_banner_shutdown_and_runtime_file(tmp_path: Path) -> None:
    """Prevents the start banner counting instances before the profile created them, a
    silent shutdown, and a runtime file left behind (or a stale one blocking a start)."""
    config = write_config(tmp_path)
    data = tmp_path / "data"
    profiles = data / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "duo.yaml").write_text(
        yaml.safe_dump({"name": "duo", "instances": [{"model": "fake", "count": 2}]})
    )
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    runtime = data / "serve.json"
    stale = {"url": "http://127.0.0.1:1", "pid": gone.pid, "create_time": 1.0}
    runtime.write_text(json.dumps(stale))

    server = start_serve(config, "--profile", "duo")
    try:
        wait_until(lambda: "serving on" in server.log(), server, "printed its banner")
        written = json.loads(runtime.read_text())
        assert (written["url"], written["pid"]) == (server.url, server.process.pid)
        assert written["create_time"] == psutil.Process(server.process.pid).create_time()
        log = server.log()
        assert f"note: ignoring the stale runtime file {runtime} (pid {gone.pid} is gone)" in log
        assert (
            f"modelyard: serving on {server.url} (dashboard /, OpenAI API /v1): 1 model, "
            "2 instances (2 ready), profile duo"
        ) in log
        pids = [view["pid"] for view in _instances(server).values()]
        assert len(pids) == 2 and all(pids)
    finally:
        left = stop_serve(server)
    assert not left, f"processes left running after serve stopped: {left}"
    assert server.process.returncode == -signal.SIGTERM
    lines = server.log().splitlines()
    assert lines[-2:] == ["modelyard: shutting down; stopping 2 instances", "modelyard: stopped"]
    assert not runtime.exists()
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


def test_ctrl_c_stops_serve_quietly(tmp_path: Path) -> None:
    """Prevents a KeyboardInterrupt traceback on Ctrl-C and a runtime file left behind."""
    config = write_config(tmp_path)
    server = start_serve(config)
    try:
        wait_until(lambda: "serving on" in server.log(), server, "printed its banner")
    finally:
        left = stop_serve(server, signal.SIGINT)
    assert not left
    assert server.process.returncode == -signal.SIGINT
    assert "Traceback" not in server.log()
    assert server.log().splitlines()[-1] == "modelyard: stopped"
    assert not (tmp_path / "data" / "serve.json").exists()


def test_a_stale_runtime_file_is_ignored_with_a_note(tmp_path: Path) -> None:
    """A runtime file whose process is gone, or whose pid is another process now, names no
    server: the CLI says so in one line and works on the store (no manager runs)."""
    config = write_config(tmp_path, server={"port": free_port()})
    runtime = tmp_path / "data" / "serve.json"
    runtime.parent.mkdir(parents=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    runtime.write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": gone.pid, "create_time": 1}))
    created = cli(config, "instances", "create", "fake")
    assert "created fake:01 on port" in ok(created)
    assert (
        created.stderr
        == f"note: ignoring the stale runtime file {runtime} (pid {gone.pid} is gone)\n"
    )

    reused = {"url": "http://127.0.0.1:1", "pid": psutil.Process().pid, "create_time": 1.0}
    runtime.write_text(json.dumps(reused))
    listed = cli(config, "instances", "list", "--json")
    assert [view["id"] for view in json.loads(ok(listed))] == ["fake:01"]
    assert listed.stderr == (
        f"note: ignoring the stale runtime file {runtime} "
        f"(pid {reused['pid']} is another process now)\n"
    )
    runtime.write_text("{not json")
    assert "not a runtime file modelyard wrote" in cli(config, "instances", "list").stderr


def test_serve_on_a_taken_port_says_so_before_starting_anything(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = cli(config, "serve", "--port", str(port))
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert not (tmp_path / "data" / "serve.json").exists()
    assert not (tmp_path / "data" / "modelyard.db").exists()


def test_a_server_that_accepts_but_does_not_answer_is_no_reason_to_write_the_store(
    tmp_path: Path,
) -> None:
    """Prevents a slow manager (a one-second probe timed out under load) being taken for no
    manager: the CLI then wrote the store behind its back. Only a refused connection means
    nothing runs there."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # the kernel accepts connections; nothing ever answers
    try:
        port = silent.getsockname()[1]
        settings = load_settings(write_config(tmp_path, server={"port": port}))
        where = Location(f"http://127.0.0.1:{port}", "config")
        with (
            ManagerClient(settings, where, answer_timeout_s=0.2) as client,
            pytest.raises(FleetError, match="accepted the connection but did not answer"),
        ):
            client.running()
    finally:
        silent.close()
    with ManagerClient(settings, where) as client:
        assert client.running() is False  # refused now
