"""The peer comparison: modelyard vs LiteLLM's proxy vs the backend itself, one run.

Every target sits in front of the same instant backend (``peer_backend.py``) and is driven by
the same client (``peer_client.py``):

- direct: the backend, started here;
- LiteLLM: ``litellm --config`` from ``bench/.peer-venv`` (made by ``bench/setup-peer.sh``;
  nothing is installed at run time), pointed at that backend, no database;
- modelyard: ``modelyard serve`` with a temporary data dir and a config holding one curated
  ``command`` model whose command runs the backend, so the gateway starts it on the first
  request, as a user's model would be.

Figures: added p50/p99 latency at concurrency 1, requests/s at concurrency 10, idle RSS of the
process tree (psutil; the backend child of modelyard is not counted), time from start to the
first chat answer, and the added first-chunk delay with 20 concurrent streams.

``run_peer_comparison()`` runs it all, prints a table and returns the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table
from tests.support.processes import free_port, stop_group

from bench.gateway import peer_client
from bench.gateway.peer_client import Target

LITELLM_VERSION = "1.106.2"
BENCH_DIR = Path(__file__).resolve().parents[1]
PEER_VENV = BENCH_DIR / ".peer-venv"
BACKEND_SCRIPT = Path(__file__).with_name("peer_backend.py")
RESULTS = BENCH_DIR / "results" / "peer.json"
START_TIMEOUT_S = 120.0
STREAM_CHUNKS = 8
STREAM_INTERVAL_MS = 20.0

Figures = dict[str, float]
Measure = Callable[[Target], Figures]
"""Load figures for one target: ``p50_s``, ``p99_s`` (c=1), ``rps`` (c=10),
``first_chunk_p50_s``, ``coalesced_streams``, ``streams``, ``events_min``."""


class PeerError(RuntimeError):
    """A target could not be started or did not answer."""


@dataclass
class Started:
    """A running target. ``stop()`` kills its process group."""

    name: str
    target: Target
    process: subprocess.Popen[bytes] | None
    start_to_first_answer_s: float | None
    log: Path | None = None
    rss_exclude: str | None = None  # a command-line marker of children not counted

    def rss_bytes(self) -> int | None:
        """RSS of the process tree, without the children marked by ``rss_exclude``."""
        if self.process is None:
            return None
        return tree_rss(self.process.pid, exclude=self.rss_exclude)

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)


def tree_rss(pid: int, exclude: str | None = None) -> int:
    """Summed RSS of ``pid`` and its descendants, skipping those whose command line contains
    ``exclude``. Processes that exit while being read are skipped."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        try:
            if exclude and exclude in " ".join(proc.cmdline()):
                continue
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def _spawn(argv: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _await_first_answer(name: str, started_at: float, process: subprocess.Popen[bytes],
                        target: Target, log: Path) -> float:  # fmt: skip
    """Seconds from ``started_at`` to the first 200 chat answer; PeerError if it dies first."""

    async def wait() -> float | None:
        poll = asyncio.create_task(peer_client.first_answer(target, started_at + START_TIMEOUT_S))
        while not poll.done():
            if process.poll() is not None:
                poll.cancel()
                return None
            await asyncio.wait({poll}, timeout=0.02)
        return poll.result() - started_at

    try:
        elapsed = asyncio.run(wait())
    except TimeoutError:
        raise PeerError(f"{name} did not answer within {START_TIMEOUT_S} s (log: {log})") from None
    if elapsed is None:
        tail = log.read_text(errors="replace")[-2000:]
        raise PeerError(f"{name} exited with {process.returncode}:\n{tail}")
    return elapsed


@contextlib.contextmanager
def direct_backend(workdir: Path) -> Iterator[Started]:
    """The instant backend on a free port: the baseline."""
    port = free_port()
    log = workdir / "backend.log"
    argv = [sys.executable, str(BACKEND_SCRIPT), "--port", str(port),
            "--chunks", str(STREAM_CHUNKS), "--interval-ms", str(STREAM_INTERVAL_MS)]  # fmt: skip
    started_at = time.perf_counter()
    process = _spawn(argv, os.environ, log)
    target = Target(f"http://127.0.0.1:{port}")
    try:
        elapsed = _await_first_answer("backend", started_at, process, target, log)
        yield Started("direct", target, process, elapsed, log)
    finally:
        stop_group(process)


@contextlib.contextmanager
def litellm_proxy(backend_url: str, workdir: Path) -> Iterator[Started]:
    """LiteLLM's proxy from ``bench/.peer-venv`` in front of ``backend_url``, on a free port.

    Raises PeerError when the venv is missing (run ``bench/setup-peer.sh``) or the proxy does
    not answer. Its key is generated here and set as ``LITELLM_MASTER_KEY``; no database.
    """
    binary = PEER_VENV / "bin" / "litellm"
    if not binary.exists():
        raise PeerError(f"{binary} is missing: run bench/setup-peer.sh first")
    port = free_port()
    key = "sk-bench-" + os.urandom(8).hex()
    config = workdir / "litellm.yaml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "model_list": [
                    {
                        "model_name": "bench",
                        "litellm_params": {
                            "model": "openai/bench",
                            "api_base": f"{backend_url}/v1",
                            "api_key": "none",
                        },
                    }
                ],
                "litellm_settings": {"telemetry": False},
            }
        )
    )
    env = {
        **os.environ,
        "LITELLM_MASTER_KEY": key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch from GitHub at start
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
    }
    env.pop("DATABASE_URL", None)
    log = workdir / "litellm.log"
    argv = [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    started_at = time.perf_counter()
    process = _spawn(argv, env, log)
    target = Target(f"http://127.0.0.1:{port}", api_key=key)
    try:
        elapsed = _await_first_answer("LiteLLM", started_at, process, target, log)
        yield Started("LiteLLM", target, process, elapsed, log)
    finally:
        stop_group(process)


def modelyard_command() -> list[str]:
    """How to run modelyard's CLI with this interpreter."""
    script = Path(sys.executable).parent / "modelyard"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from modelyard.cli.app import main; main()"]


@contextlib.contextmanager
def modelyard_serve(workdir: Path) -> Iterator[Started]:
    """``modelyard serve`` with a temporary data dir and one curated ``command`` model, ``bench``,
    whose command runs the instant backend; the gateway starts it on the first request."""
    port = free_port()
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    backend = (
        f"{sys.executable} {BACKEND_SCRIPT} --port ${{PORT}} "
        f"--chunks {STREAM_CHUNKS} --interval-ms {STREAM_INTERVAL_MS}"
    )
    config = workdir / "modelyard.yaml"
    config.write_text(
        json.dumps(
            {
                "discovery": {"hf": False, "ollama": False, "default_model": False},
                "curated": [{"id": "bench", "engine": "command", "command": backend}],
                "server": {"host": "127.0.0.1", "port": port},
            }
        )
    )
    env = {
        **os.environ,
        "HOME": str(home),
        "MODELYARD_DATA_DIR": str(workdir / "data"),
        "HF_HUB_CACHE": str(workdir / "hf"),
        "OLLAMA_MODELS": str(workdir / "ollama"),
    }
    env.pop("MODELYARD_CONFIG", None)
    log = workdir / "modelyard.log"
    argv = [*modelyard_command(), "--config", str(config), "serve"]
    started_at = time.perf_counter()
    process = _spawn(argv, env, log)
    target = Target(f"http://127.0.0.1:{port}")
    try:
        elapsed = _await_first_answer("modelyard", started_at, process, target, log)
        yield Started("modelyard", target, process, elapsed, log, str(BACKEND_SCRIPT))
    finally:
        stop_group(process)


def default_measure(target: Target) -> Figures:
    """The load figures of one target, with ``peer_client``."""

    async def run() -> Figures:
        lat = await peer_client.latency(target)
        rps = await peer_client.throughput(target, concurrency=10)
        streams = await peer_client.streams(target, concurrency=20)
        return {**lat, "rps": rps, **streams}

    return asyncio.run(run())


def _measure_one(
    start: Callable[[], contextlib.AbstractContextManager[Started]], measure: Measure
) -> dict[str, Any]:
    with start() as started:
        idle = started.rss_bytes()
        figures: dict[str, Any] = dict(measure(started.target))
        figures["idle_rss_bytes"] = idle
        figures["rss_after_load_bytes"] = started.rss_bytes()
        figures["start_to_first_answer_s"] = started.start_to_first_answer_s
    return figures


def run_peer_comparison(measure: Measure = default_measure) -> dict[str, dict[str, Any]]:
    """Start each target in turn, measure it, print the table; return figures per target.

    A target that cannot start (LiteLLM not installed, ``modelyard serve`` failing) is
    reported with its ``error`` and left out of the table's ratios; the others still run.
    Writes ``bench/results/peer.json``.
    """
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="modelyard-peer-") as tmp:
        workdir = Path(tmp)
        with direct_backend(workdir) as backend:
            results["direct"] = _measure_one(lambda: contextlib.nullcontext(backend), measure)
            for name, start in (
                ("modelyard", lambda: modelyard_serve(workdir)),
                ("LiteLLM", lambda: litellm_proxy(backend.target.base_url, workdir)),
            ):
                try:
                    results[name] = _measure_one(start, measure)
                except (PeerError, OSError, ConnectionError) as exc:
                    results[name] = {"error": str(exc)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_comparison(results)
    return results


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.2f} ms"


def print_comparison(
    results: Mapping[str, Mapping[str, Any]], console: Console | None = None
) -> None:
    """The table: modelyard vs LiteLLM vs direct, and modelyard's ratio to LiteLLM."""
    out = console or Console(width=None if sys.stdout.isatty() else 110)
    base = results["direct"]
    names = ("modelyard", "LiteLLM", "direct")

    def get(name: str, key: str) -> float | None:
        value = results.get(name, {}).get(key)
        return None if value is None else float(value)

    def added(name: str, key: str) -> float | None:
        value = get(name, key)
        return None if value is None or name == "direct" else value - float(base[key])

    rows: list[tuple[str, list[float | None], Callable[[float | None], str], bool]] = [
        ("added latency p50, c=1", [added(n, "p50_s") for n in names], _ms, False),
        ("added latency p99, c=1", [added(n, "p99_s") for n in names], _ms, False),
        ("requests/s, c=10", [get(n, "rps") for n in names],
         lambda v: "-" if v is None else f"{v:,.0f}", True),
        ("idle RSS", [get(n, "idle_rss_bytes") for n in names],
         lambda v: "-" if v is None else f"{v / 1e6:.0f} MB", False),
        ("start to first answer", [get(n, "start_to_first_answer_s") for n in names],
         lambda v: "-" if v is None else f"{v:.2f} s", False),
        ("added first-chunk delay, 20 streams", [added(n, "first_chunk_p50_s") for n in names],
         _ms, False),
        ("streams with coalesced chunks", [get(n, "coalesced_streams") for n in names],
         lambda v: "-" if v is None else f"{v:.0f}", False),
    ]  # fmt: skip
    table = Table(title="gateway peers: the same instant backend, the same client")
    table.add_column("figure")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("modelyard vs LiteLLM", justify="right")
    for label, values, fmt, higher_is_better in rows:
        mine, peer = values[0], values[1]
        ratio = "-"
        if mine is not None and peer is not None and mine > 0 and peer > 0:
            better = mine / peer if higher_is_better else peer / mine
            ratio = f"{better:.1f}x better" if better >= 1 else f"{1 / better:.1f}x worse"
        table.add_row(label, *(fmt(v) for v in values), ratio)
    out.print(table)
    for name in names:
        error = results.get(name, {}).get("error")
        if error:
            out.print(f"[yellow]{name} not measured:[/yellow] {error}", highlight=False)
