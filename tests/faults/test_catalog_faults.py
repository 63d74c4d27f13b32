"""Issue 10, items 2 and 11: a file name that is not UTF-8 must not poison the catalog, and
the messages for a binary config file, a bad environment variable and a GGUF cut short past
the read bound must say what is wrong and where.

Everything runs for real: the CLI as a child process over this tree's code, the app over real
SQLite, ``modelyard serve`` as a child answering on a real port, GGUF files written with the
``gguf`` package and cut with ``truncate``-style writes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.catalog.catalog import Catalog
from modelyard.catalog.gguf import read_header
from modelyard.errors import ConfigError, GGUFError
from modelyard.settings import load_settings
from modelyard.store import Store
from tests.api.conftest import api_settings, expect, serving
from tests.catalog.layouts import model, ollama_model
from tests.gateway.harness import gateway_settings
from tests.support.ggufs import write_gguf
from tests.support.processes import free_port, stop_group

SRC = Path(__file__).resolve().parents[2] / "src"
BAD_NAME = b"x-\xff.gguf"  # 0xff never occurs in UTF-8
ESCAPED_NAME = "x-\\xff.gguf"  # how modelyard shows it: a backslash, then "xff"
MIB = 1024 * 1024


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``modelyard ARGS`` as a child process running this tree's code (PYTHONPATH first)."""
    environ = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    environ.pop("MODELYARD_DEBUG", None)
    command = [sys.executable, "-c", "from modelyard.cli.app import main; main()", *args]
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=120)


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The single ``error: ...`` line of a failed command (never an internal error)."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.fixture
def poisoned(tmp_path: Path) -> Path:
    """A folder holding a valid GGUF named ``x-\\xff.gguf`` and a valid ``ok-1b-q4_k_m.gguf``."""
    folder = tmp_path / "models"
    folder.mkdir()
    write_gguf(Path(os.fsdecode(os.fsencode(folder) + b"/" + BAD_NAME)), name="X", size_label="1B")
    write_gguf(folder / "ok-1b-q4_k_m.gguf", name="Ok", size_label="1B")
    assert BAD_NAME in {os.fsencode(entry.name) for entry in folder.iterdir()}
    return folder


def by_path(models: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {Path(m["path"]).name: m for m in models}


# -- item 2: a file name that is not UTF-8 -----------------------------------------------------


def test_scan_lists_a_file_name_that_is_not_utf8_escaped_and_the_catalog_keeps_working(
    poisoned: Path,
) -> None:
    """Prevents the poisoned catalog: `scan DIR` with ``x-\\xff.gguf`` exited 70 with a
    UnicodeEncodeError from the discovery cache, the folder was remembered anyway, and every
    later `scan` and `models list` failed the same way."""
    env = {"MODELYARD_DISCOVERY__DEFAULT_MODEL": "false"}

    scanned = cli("scan", str(poisoned), env=env)

    assert scanned.returncode == 0, scanned.stderr
    assert "1 models, 1 not usable; 2 added" in scanned.stdout
    again = cli("scan", env=env)
    assert again.returncode == 0, again.stderr
    assert "1 models, 1 not usable; no changes" in again.stdout
    listed = cli("models", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    models = by_path(json.loads(listed.stdout))
    assert set(models) == {"ok-1b-q4_k_m.gguf", ESCAPED_NAME}
    assert models["ok-1b-q4_k_m.gguf"]["error"] is None
    assert models["ok-1b-q4_k_m.gguf"]["tier"] == "fast"
    bad = models[ESCAPED_NAME]
    assert bad["path"] == f"{poisoned}/{ESCAPED_NAME}"
    assert "not valid UTF-8" in bad["error"] and "rename" in bad["error"]


@pytest.fixture
def strange(tmp_path: Path) -> Path:
    """An empty folder named ``dir-\\xff``."""
    folder = Path(os.fsdecode(os.fsencode(tmp_path) + b"/dir-\xff"))
    folder.mkdir()
    return folder


async def test_rescan_route_lists_the_file_and_refuses_a_folder_name_that_is_not_utf8(
    tmp_path: Path, poisoned: Path, strange: Path
) -> None:
    """Prevents POST /api/models/rescan answering 500 (and poisoning the store) for a folder
    holding ``x-\\xff.gguf``, and a folder path that is not UTF-8 being remembered, which
    broke every later scan: the file is listed escaped, the bad folder name is a 400."""
    async with serving(api_settings(tmp_path / "cfg")) as api:
        report = expect(
            await api.client.post("/api/models/rescan", json={"paths": [str(poisoned)]}), 200
        )
        assert report["errors"] == 1
        registry = expect(await api.client.get("/api/models/registry"), 200)
        found = by_path([m for m in registry["models"] if m["path"]])
        assert found[ESCAPED_NAME]["error"].startswith("the file name is not valid UTF-8")
        assert found["ok-1b-q4_k_m.gguf"]["error"] is None
        # A lone surrogate can only travel as a JSON escape: write the body by hand.
        body = json.dumps({"paths": [str(strange)]}, ensure_ascii=True).encode()
        refused = await api.client.post(
            "/api/models/rescan", content=body, headers={"content-type": "application/json"}
        )
        error = expect(refused, 400)["error"]
        assert (error["code"], error["param"]) == ("invalid_value", "paths")
        assert "dir-\\xff" in error["message"] and "not valid UTF-8" in error["message"]
        assert api.services.catalog.folders() == [poisoned]
        again = expect(await api.client.post("/api/models/rescan"), 200)
        assert again["errors"] == 1


def test_a_first_serve_over_a_folder_with_such_a_file_starts_and_lists_it(
    tmp_path: Path, poisoned: Path
) -> None:
    """Prevents a first `modelyard serve` dying at start: its first scan (the store holds
    none) read a folder holding ``x-\\xff.gguf`` and failed writing the discovery cache."""
    port = free_port()
    settings = gateway_settings(
        tmp_path / "cfg", server={"port": port}, discovery={"folders": [str(poisoned)]}
    )
    assert settings.config_file is not None
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [sys.executable, "-c", "from modelyard.cli.app import main; main()", "serve"],
            env={
                **os.environ,
                "PYTHONPATH": str(SRC),
                "MODELYARD_CONFIG": str(settings.config_file),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        registry = _when_served(serve, log, f"{url}/api/models/registry")
        found = by_path([m for m in registry["models"] if m["path"]])
        assert set(found) == {"ok-1b-q4_k_m.gguf", ESCAPED_NAME}
        assert found[ESCAPED_NAME]["error"] is not None
    finally:
        stop_group(serve, timeout_s=30)
    assert serve.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in log.read_text(errors="replace")


def _when_served(process: subprocess.Popen[bytes], log: Path, url: str) -> Any:
    """The JSON at ``url`` once the server answers it; fails at once if the server exited."""
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, f"serve exited: {log.read_text(errors='replace')}"
        try:
            response = httpx.get(url, timeout=2)
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "serve never answered"
            time.sleep(0.05)
            continue
        assert response.status_code == 200, response.text
        return response.json()


def test_names_that_are_not_utf8_elsewhere_are_escaped_too(tmp_path: Path) -> None:
    """Prevents the same poisoning through other names: a sub-folder that is not UTF-8 (its
    files are listed, escaped, not usable) and an Ollama model whose name folder is not UTF-8
    (its blob's path is fine: it stays usable, its name escaped)."""
    folder = tmp_path / "models"
    inner = Path(os.fsdecode(os.fsencode(folder) + b"/caf\xe9"))
    inner.mkdir(parents=True)
    write_gguf(inner / "inner-1b-q4_k_m.gguf", name="Inner", size_label="1B")
    ollama = tmp_path / "ollama"  # OLLAMA_MODELS, from the autouse fixture
    ollama_model(ollama, os.fsdecode(b"caf\xe9"), "latest", model(name="Cafe", size_label="1B"))
    env = {"MODELYARD_DISCOVERY__DEFAULT_MODEL": "false"}

    scanned = cli("scan", str(folder), env=env)
    assert scanned.returncode == 0, scanned.stderr
    listed = cli("models", "list", "--json", env=env)

    assert listed.returncode == 0, listed.stderr
    models = {m["source"]: m for m in json.loads(listed.stdout)}
    assert models["folder"]["path"] == f"{folder}/caf\\xe9/inner-1b-q4_k_m.gguf"
    assert "not valid UTF-8" in models["folder"]["error"]
    assert models["ollama"]["ollama_name"] == "caf\\xe9:latest"
    assert models["ollama"]["error"] is None


def test_a_scan_that_fails_remembers_none_of_its_folders(tmp_path: Path, poisoned: Path) -> None:
    """Prevents a folder named to a scan that then failed being remembered anyway (it was
    stored before the scan ran, so the failure came back on every later scan)."""
    entry = {"id": "twice", "engine": "command", "command": "true"}
    settings = load_settings(discovery={"default_model": False}, curated=[entry, entry])
    store = Store.open(settings.db_path)
    try:
        catalog = Catalog(settings, store)
        with pytest.raises(ConfigError, match="'twice' is used twice"):
            catalog.rescan([poisoned])
        assert catalog.folders() == []
        assert store.query("SELECT COUNT(*) FROM audit WHERE action = 'folder.add'")[0][0] == 0
    finally:
        store.close()


# -- item 11: messages that name the problem ---------------------------------------------------


def test_a_binary_config_file_is_named_in_one_line(tmp_path: Path) -> None:
    """Prevents "internal error: UnicodeDecodeError" (exit 70) without the file's name for a
    config file that is not text."""
    config = tmp_path / "modelyard.yaml"
    config.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))

    line = one_line_error(cli("--config", str(config), "models", "list"), 2)

    assert str(config) in line
    assert "not text" in line and "byte 0x80" in line and "UTF-8" in line


def test_a_bad_environment_variable_is_blamed_not_the_config_file(tmp_path: Path) -> None:
    """Prevents MODELYARD_SERVER__PORT=abc being reported as a bad key of the config file
    (which does not set the port at all)."""
    config = tmp_path / "modelyard.yaml"
    config.write_text("server:\n  host: 127.0.0.1\n", encoding="utf-8")
    env = {"MODELYARD_SERVER__PORT": "abc"}

    line = one_line_error(cli("--config", str(config), "models", "list", env=env), 2)

    assert line.startswith("error: environment variable MODELYARD_SERVER__PORT: key 'server.port'")
    assert "valid integer" in line
    assert str(config) not in line


def test_the_config_file_is_still_blamed_for_its_own_bad_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prevents the opposite mistake: a variable for another key of the same section must not
    take the blame for the file's bad value."""
    config = tmp_path / "modelyard.yaml"
    config.write_text("server:\n  port: abc\n", encoding="utf-8")
    monkeypatch.setenv("MODELYARD_SERVER__HOST", "127.0.0.1")
    monkeypatch.setenv("MODELYARD_SERVER", '{"host": "127.0.0.1"}')

    with pytest.raises(ConfigError) as caught:
        load_settings(config)

    assert caught.value.message.startswith(f"config file {config}: key 'server.port'")


def test_an_environment_variable_that_is_not_json_is_named(tmp_path: Path) -> None:
    """Prevents "internal error: SettingsError" (exit 70) for a variable that sets a list
    without JSON (MODELYARD_DISCOVERY__FOLDERS=/models)."""
    env = {"MODELYARD_DISCOVERY__FOLDERS": str(tmp_path), "MODELYARD_DISCOVERY__HF_CACHE": "/x"}

    line = one_line_error(cli("models", "list", env=env), 2)

    assert line.startswith("error: environment variable MODELYARD_DISCOVERY__FOLDERS: ")
    assert "JSON" in line


@pytest.fixture(scope="module")
def long_header(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole GGUF whose header (300,000 tokens, their scores and types) is about 7 MiB."""
    path = write_gguf(tmp_path_factory.mktemp("long") / "long-1b-q4_k_m.gguf", vocab_size=300_000)
    header = read_header(path)
    assert header.data_offset > 6 * MIB and header.bytes_read < 4 * MIB
    return path


def cut_points(path: Path) -> dict[str, int]:
    """Where to cut the file: in the tokens past 4 MiB, just after them, in the scores, in the
    tensor infos, in the tensor data."""
    data = path.read_bytes()
    scores = data.index(b"tokenizer.ggml.scores") - 8
    infos = data.index(b"token_embd.weight") - 8
    offset = read_header(path).data_offset
    return {
        "tokens, past the bound": 4 * MIB + 5,
        "tokens, later": 5 * MIB,
        "just after the tokens": scores + 3,
        "scores": scores + 500_000,
        "tensor infos": infos + 20,
        "tensor data": offset + 10,
    }


@pytest.mark.parametrize(
    "where",
    [
        "tokens, past the bound",
        "tokens, later",
        "just after the tokens",
        "scores",
        "tensor infos",
        "tensor data",
    ],
)
def test_a_gguf_cut_short_past_the_read_bound_says_truncated(
    tmp_path: Path, long_header: Path, where: str
) -> None:
    """Prevents "header larger than the 4 MiB read bound" for a download stopped past 4 MiB:
    the file is truncated, and the user should fetch it again, not raise the bound."""
    cut = tmp_path / "long-1b-q4_k_m.gguf"
    offset = cut_points(long_header)[where]
    assert offset > 4 * MIB
    cut.write_bytes(long_header.read_bytes()[:offset])

    with pytest.raises(GGUFError) as caught:
        read_header(cut)

    assert caught.value.message.startswith("truncated: "), caught.value.message
    assert f"{offset:,}" in caught.value.message


def test_a_whole_long_header_is_read_and_a_small_bound_is_still_named(long_header: Path) -> None:
    """Prevents the truncation check overreaching: a whole file past a small bound is still
    "larger than the read bound", and the default bound reads it."""
    assert read_header(long_header).vocab_size == 300_000
    with pytest.raises(GGUFError) as caught:
        read_header(long_header, 256 * 1024)
    assert caught.value.message == "header larger than the 262,144-byte read bound"


def test_scan_lists_the_cut_file_as_truncated(tmp_path: Path, long_header: Path) -> None:
    """The catalog shows the reader's reason: the cut file is listed, not usable, truncated."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / long_header.name).write_bytes(long_header.read_bytes()[: 5 * MIB])

    listed = cli("scan", str(folder), env={"MODELYARD_DISCOVERY__DEFAULT_MODEL": "false"})
    assert listed.returncode == 0, listed.stderr
    models = cli("models", "list", "--json", env={"MODELYARD_DISCOVERY__DEFAULT_MODEL": "false"})
    assert models.returncode == 0, models.stderr
    (model,) = json.loads(models.stdout)
    assert model["error"].startswith("truncated: the file ends (5,242,880 bytes)")
