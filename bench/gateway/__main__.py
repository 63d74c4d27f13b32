"""``python -m bench.gateway``: the gateway against the backend behind it, in one run.

``modelyard serve`` runs with one curated ``command`` model, ``bench``, whose command runs
``peer_backend.py`` (answers at once; streams 64 events 20 ms apart), so the gateway starts it
as an on-demand instance on the first request. The same client then measures the backend
directly (at the instance's own address) and through the gateway, and prints each figure
with its baseline, the difference and the ratio. ``--peer`` also runs the LiteLLM comparison
(``bench.gateway.peer``). Figures go to ``bench/results/gateway.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.gateway.measure import measure
from bench.gateway.peer import (
    BACKEND_SCRIPT,
    PeerError,
    _await_first_answer,
    _spawn,
    free_port,
    modelyard_command,
    stop_group,
    tree_rss,
)
from bench.gateway.peer_client import Target

RESULTS = Path(__file__).resolve().parents[1] / "results" / "gateway.json"
CHUNKS = 64
INTERVAL_MS = 20.0


def _serve(workdir: Path) -> tuple[Any, str, str, float]:
    """Start ``modelyard serve``; return the process, its URL, the backend's URL and the
    seconds from start to the first answer."""
    port = free_port()
    backend = (
        f"{sys.executable} {BACKEND_SCRIPT} --port ${{PORT}} "
        f"--chunks {CHUNKS} --interval-ms {INTERVAL_MS}"
    )
    config = workdir / "modelyard.yaml"
    config.write_text(
        json.dumps(
            {
                "data_dir": str(workdir / "data"),
                "discovery": {"hf": False, "ollama": False, "default_model": False},
                "curated": [
                    {"id": "bench", "engine": "command", "command": backend, "tier": "fast"}
                ],
                "server": {"host": "127.0.0.1", "port": port},
                "figures": {"request_log": False},
                "gateway": {"queue_size": 4096},
            }
        )
    )
    (workdir / "home").mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(workdir / "home"), "HF_HUB_CACHE": str(workdir / "hf")}
    env.pop("MODELYARD_CONFIG", None)
    env.pop("MODELYARD_DATA_DIR", None)
    log = workdir / "modelyard.log"
    started = time.perf_counter()
    process = _spawn([*modelyard_command(), "--config", str(config), "serve"], env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        elapsed = _await_first_answer("modelyard", started, process, Target(url), log)
        instances = httpx.get(f"{url}/api/instances", timeout=10).json()
    except BaseException:
        stop_group(process)
        raise
    return process, url, f"http://127.0.0.1:{instances[0]['port']}", elapsed


def _row(name: str, base: float, via: float, unit: str, scale: float = 1.0) -> str:
    ratio = via / base if base else float("nan")
    return (
        f"{name:<34} {base * scale:>11.3f} {via * scale:>11.3f} "
        f"{(via - base) * scale:>+11.3f} {unit:<5} x{ratio:.2f}"
    )


def report(direct: dict[str, Any], gateway: dict[str, Any], extra: dict[str, Any]) -> None:
    print(f"{'figure':<34} {'direct':>11} {'gateway':>11} {'added':>11} {'unit':<5} ratio")
    for key in ("p50_s", "p95_s", "p99_s"):
        print(_row(f"latency c=1 {key[:-2]}", direct[key], gateway[key], "ms", 1000))
    print(_row("throughput c=10", direct["rps"], gateway["rps"], "req/s"))
    print(_row("first chunk p50, 20 streams", direct["first_chunk_p50_s"],
               gateway["first_chunk_p50_s"], "ms", 1000))  # fmt: skip
    print(_row("first chunk max, 20 streams", direct["first_chunk_max_s"],
               gateway["first_chunk_max_s"], "ms", 1000))  # fmt: skip
    print(_row("chunk lateness p99", direct["lateness_p99_s"], gateway["lateness_p99_s"],
               "ms", 1000))  # fmt: skip
    for key in ("events_min", "coalesced_streams", "streams"):
        print(_row(key, direct[key], gateway[key], ""))
    if "big_first_chunk_max_s" in gateway:
        for key in ("big_first_chunk_p50_s", "big_first_chunk_max_s", "big_lateness_p99_s"):
            print(_row(key, direct[key], gateway[key], "ms", 1000))
        for key in ("big_events_min", "big_coalesced_streams", "big_streams"):
            print(_row(key, direct[key], gateway[key], ""))
    for key, value in extra.items():
        print(f"{key:<34} {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gateway vs direct, one run")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--big-streams", type=int, default=0, help="e.g. 512")
    parser.add_argument("--peer", action="store_true", help="also run the LiteLLM comparison")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as folder:
        try:
            process, url, backend_url, first_s = _serve(Path(folder))
        except PeerError as exc:
            print(exc, file=sys.stderr)
            return 1
        try:
            idle_rss = tree_rss(process.pid, exclude=str(BACKEND_SCRIPT))
            options = {
                "requests": args.requests,
                "seconds": args.seconds,
                "big_streams": args.big_streams,
                "interval_s": INTERVAL_MS / 1000,
                "chunks": CHUNKS,
            }
            direct = measure(backend_url, **options)
            gateway = measure(url, **options)
        finally:
            stop_group(process)
    extra = {"modelyard idle RSS (MB)": round(idle_rss / 2**20, 1),
             "start to first answer (s)": round(first_s, 3)}  # fmt: skip
    report(direct, gateway, extra)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"direct": direct, "gateway": gateway, **extra}, indent=2))
    if args.peer:
        from bench.gateway.peer import run_peer_comparison

        run_peer_comparison()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
