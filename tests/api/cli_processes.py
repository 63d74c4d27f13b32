"""``modelyard serve`` and the CLI as real subprocesses of the installed ``modelyard`` program,
with this tree's code (PYTHONPATH) and no ``MODELYARD_*`` variable: they share only a config
file, as two shells of one user do.

``start_serve`` waits until the server answers ``/health`` (failing at once if it exited);
``stop_serve`` sends SIGTERM, waits, and reports every process of its tree left running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from tests.gateway.harness import fake_model, port_range
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
MODELYARD = str(Path(sys.executable).with_name("modelyard"))
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
CLI_TIMEOUT_S = 120.0


def clean_env() -> dict[str, str]:
    """This process's environment (HOME and the model stores point at temporary folders, see
    tests/conftest.py) without any MODELYARD_* variable, with this tree's code first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def write_config(folder: Path, **sections: Any) -> Path:
    """A config file under ``folder`` (data in ``folder/data``): no discovery, memory set by
    hand, one curated model ``fake`` served by the fake backend, quick fleet timeouts."""
    config: dict[str, Any] = {
        "data_dir": str(folder / "data"),
        "discovery": {"hf": False, "ollama": False, "folders": [], "default_model": False},
        "memory": {"ram_bytes": 16 * 1024**3, "gpus": [], "reserve_bytes": 0},
        "fleet": {"port_range": list(port_range()), "start_timeout_s": 30.0},
        "figures": {"request_log": False},
        "curated": [fake_model("fake")],
        **sections,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "modelyard.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def cli(
    config: Path, *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """``modelyard --config CONFIG ARGS...`` to its end (``prefix`` replaces the program)."""
    program = list(prefix) or [MODELYARD]
    return subprocess.run(
        [*program, "--config", str(config), *args],
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The standard output of a command that must have succeeded."""
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}{result.stdout}"
    return result.stdout


@dataclass
class Serve:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, trust_env=False)


def start_serve(config: Path, *args: str, port: int | None = None) -> Serve:
    """``modelyard --config CONFIG serve --port P ARGS...``, answering /health."""
    port = port or free_port()
    log_path = config.with_name(f"serve-{port}.log")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [MODELYARD, "--config", str(config), "serve", "--port", str(port), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            start_new_session=True,
        )
    served = Serve(process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_until(lambda: _healthy(served.url), served, "answered /health")
    except BaseException:
        stop_serve(served)
        raise
    return served


def wait_until(condition: Callable[[], bool], served: Serve, what: str) -> None:
    """Poll ``condition`` to a deadline; fail at once if the server exited."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not condition():
        code = served.process.poll()
        assert code is None, f"modelyard serve exited ({code}):\n{served.log()}"
        assert time.monotonic() < deadline, f"modelyard serve never {what}:\n{served.log()}"
        time.sleep(0.02)  # the poll interval of a deadline wait


def stop_serve(served: Serve, sig: int = signal.SIGTERM) -> list[int]:
    """Send ``sig``, wait for the exit (SIGKILL after STOP_TIMEOUT_S); returns the pids of
    the server's tree still running afterwards (killed now)."""
    try:
        tree = psutil.Process(served.process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    if served.process.poll() is None:
        served.process.send_signal(sig)
        try:
            served.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(served.process.pid, signal.SIGKILL)
            served.process.wait(10)
    left = []
    for child in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() != psutil.STATUS_ZOMBIE:
                left.append(child.pid)
                child.kill()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(served.process.pid, signal.SIGKILL)
    return left


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


# `modelyard` that appends the path of every SQLite database it opens to the file named
# first: the CLI's own writes to the store cannot happen without one.
WATCH_SQLITE = """
import sys
opened = sys.argv.pop(1)
def hook(event, args):
    if event == "sqlite3.connect":
        with open(opened, "a", encoding="utf-8") as out:
            out.write(f"{args[0]}\\n")
sys.addaudithook(hook)
from modelyard.cli.app import main
main()
"""


def watched(opened: Path) -> tuple[str, ...]:
    """The ``prefix`` for ``cli`` that runs the CLI under WATCH_SQLITE, recording to
    ``opened``."""
    return (sys.executable, "-c", WATCH_SQLITE, str(opened))
