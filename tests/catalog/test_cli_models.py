"""`modelyard scan` and `modelyard models ...` run as the real console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.catalog.layouts import model

Q4_K_M = 15
REQUIRED_KEYS = {
    "id",
    "path",
    "paths",
    "architecture",
    "family",
    "parameters_b",
    "quantization",
    "context_length",
    "tier",
    "thinking",
    "coder",
    "instruct",
    "vision",
    "embedding",
    "enabled",
    "source",
    "ollama_name",
    "error",
}

# Run in a child: drop the capabilities that let root read any file, then run the CLI, so a
# file with mode 000 is really unreadable even when the tests run as root.
WITHOUT_DAC_OVERRIDE = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]
header, data = Header(0x20080522, 0), (Data * 2)()
if libc.capget(ctypes.byref(header), data) != 0:
    sys.exit("capget failed")
data[0].effective &= ~((1 << 1) | (1 << 2))  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
if libc.capset(ctypes.byref(header), data) != 0:
    sys.exit("capset failed")
from modelyard.cli.app import main
sys.argv = ["modelyard", *sys.argv[1:]]
main()
"""


def modelyard_bin() -> str:
    found = shutil.which("modelyard", path=str(Path(sys.executable).parent))
    assert found is not None, "the modelyard console script is not installed in this venv"
    return found


def run(*args: str, default_model: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELYARD_DISCOVERY__DEFAULT_MODEL": str(default_model).lower()}
    return subprocess.run(
        [modelyard_bin(), *args], env=env, capture_output=True, text=True, timeout=120
    )


def listed(*args: str) -> list[dict[str, Any]]:
    result = run("models", "list", "--json", *args)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, list)
    return data


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    (root / "lmstudio-community" / "Qwen2.5-Coder-14B").mkdir(parents=True)
    model(
        arch="qwen2",
        name="Qwen2.5 Coder 14B Instruct",
        size_label="14B",
        file_type=Q4_K_M,
        context_length=32768,
    )(root / "lmstudio-community" / "Qwen2.5-Coder-14B" / "qwen2.5-coder-14b-instruct-q4_k_m.gguf")
    model(
        arch="llama",
        name="Llama 3.2 1B Instruct",
        size_label="1B",
        file_type=Q4_K_M,
        context_length=8192,
    )(root / "Llama-3.2-1B-Instruct-Q4_K_M.gguf")
    (root / "broken.gguf").write_text("not a model")
    return root


def test_scan_then_list_json(folder: Path, gemma_path: Path) -> None:
    (folder / gemma_path.name).symlink_to(gemma_path)

    scanned = run("scan", str(folder))

    assert scanned.returncode == 0, scanned.stderr
    assert "powerful (1)" in scanned.stdout and "fast (2)" in scanned.stdout
    assert "not usable (1)" in scanned.stdout
    assert "3 models, 1 not usable; 4 added" in scanned.stdout
    models = {m["id"]: m for m in listed()}
    assert sorted(models) == [
        "broken",
        "gemma-3-270m-q4_k_m",
        "llama-3.2-1b-instruct-q4_k_m",
        "qwen2.5-coder-14b-instruct-q4_k_m",
    ]
    for entry in models.values():
        assert set(entry) >= REQUIRED_KEYS
    gemma = models["gemma-3-270m-q4_k_m"]
    assert (gemma["architecture"], gemma["quantization"], gemma["context_length"]) == (
        "gemma3",
        "Q4_K_M",
        32768,
    )
    assert isinstance(gemma["parameters_b"], float) and 0.25 <= gemma["parameters_b"] <= 0.29
    assert (gemma["source"], gemma["ollama_name"], gemma["error"]) == ("folder", None, None)
    assert isinstance(gemma["paths"], list)
    assert models["broken"]["error"]
    assert [m["id"] for m in listed("--tier", "powerful")] == ["qwen2.5-coder-14b-instruct-q4_k_m"]

    again = run("scan")
    assert again.returncode == 0 and "no changes" in again.stdout


def test_set_show_and_one_line_errors(folder: Path) -> None:
    assert run("scan", str(folder)).returncode == 0
    model_id = "llama-3.2-1b-instruct-q4_k_m"

    changed = run(
        "models",
        "set",
        model_id,
        "--tier",
        "powerful",
        "--role",
        "code=80",
        "--role",
        "caption=20",
        "--name",
        "Little Llama",
        "--disabled",
    )
    assert changed.returncode == 0, changed.stderr
    shown = run("models", "show", model_id, "--json")
    data = json.loads(shown.stdout)
    assert (data["tier"], data["tier_overridden"], data["enabled"]) == ("powerful", True, False)
    assert (data["display_name"], data["roles"]) == ("Little Llama", {"caption": 20, "code": 80})
    assert [m["id"] for m in listed("--enabled")] == ["qwen2.5-coder-14b-instruct-q4_k_m"]

    cleared = run("models", "set", model_id, "--clear", "tier", "--enabled")
    assert cleared.returncode == 0, cleared.stderr
    data = json.loads(run("models", "show", model_id, "--json").stdout)
    assert (data["tier"], data["enabled"], data["roles"]) == (
        "fast",
        True,
        {"caption": 20, "code": 80},
    )

    assert "tier: expected one of fast, balanced, powerful" in one_line_error(
        run("models", "set", model_id, "--tier", "huge")
    )
    assert "roles.code: expected a priority from 0 to 100" in one_line_error(
        run("models", "set", model_id, "--role", "code=150")
    )
    assert "--role: expected NAME=PRIORITY" in one_line_error(
        run("models", "set", model_id, "--role", "code")
    )
    assert "did you mean llama-3.2-1b-instruct-q4_k_m" in one_line_error(
        run("models", "show", "llama-3.2-1b-instruct")
    )
    assert "field: expected one of" in one_line_error(
        run("models", "set", model_id, "--clear", "colour")
    )
    assert "no such file or folder" in one_line_error(run("scan", str(folder / "absent")))


def test_export_and_import(folder: Path, tmp_path: Path) -> None:
    assert run("scan", str(folder)).returncode == 0
    model_id = "llama-3.2-1b-instruct-q4_k_m"
    assert run("models", "set", model_id, "--tier", "balanced").returncode == 0
    exported = tmp_path / "catalog.json"

    result = run("models", "export", str(exported))

    assert result.returncode == 0, result.stderr
    document = json.loads(exported.read_text())
    assert document["overrides"] == {model_id: {"tier": "balanced"}}

    assert run("models", "set", model_id, "--clear", "tier").returncode == 0
    not_json = tmp_path / "bad.json"
    not_json.write_text("{oops")
    assert "is not valid JSON" in one_line_error(run("models", "import", str(not_json)))
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({**document, "overrides": {model_id: {"enabled": "no"}}}))
    assert f"overrides.{model_id}.enabled" in one_line_error(run("models", "import", str(invalid)))
    assert "cannot read" in one_line_error(run("models", "import", str(tmp_path / "none.json")))
    assert json.loads(run("models", "show", model_id, "--json").stdout)["tier"] == "fast"

    assert run("models", "import", str(exported)).returncode == 0
    assert json.loads(run("models", "show", model_id, "--json").stdout)["tier"] == "balanced"


def test_unreadable_file_is_listed_with_permission_denied(folder: Path, tmp_path: Path) -> None:
    locked = folder / "locked-7b-q4_k_m.gguf"
    model(arch="llama", size_label="7B", file_type=Q4_K_M)(locked)
    locked.chmod(0)
    env = {**os.environ, "MODELYARD_DISCOVERY__DEFAULT_MODEL": "false"}

    scanned = subprocess.run(
        [sys.executable, "-c", WITHOUT_DAC_OVERRIDE, "scan", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert scanned.returncode == 0, scanned.stderr
    models = {m["id"]: m for m in listed()}
    error = models["locked-7b-q4_k_m"]["error"]
    assert error is not None and "permission" in error.lower()
    assert models["llama-3.2-1b-instruct-q4_k_m"]["error"] is None
