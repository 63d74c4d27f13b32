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
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.support.processes import free_port, stop_group

from bench.gateway.measure import (
    added_delays,
    after_first,
    latency,
    percentile,
    stream_figures,
    throughput,
)
from bench.gateway.peer import (
    BACKEND_SCRIPT,
    PeerError,
    _await_first_answer,
    _spawn,
    modelyard_command,
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


@dataclass(frozen=True)
class Row:
    """One printed figure: the direct baseline, through the gateway, and the goal."""

    name: str
    direct: float
    gateway: float
    unit: str
    goal: str
    scale: float = 1.0
    added: float | None = None  # when not simply gateway - direct

    def line(self) -> str:
        added = self.gateway - self.direct if self.added is None else self.added
        ratio = self.gateway / self.direct if self.direct else float("nan")
        s = self.scale
        return (
            f"{self.name:<40} {self.direct * s:>10.3f} {self.gateway * s:>10.3f} "
            f"{added * s:>+10.3f} {self.unit:<6} x{ratio:<7.2f} {self.goal}"
        )


def _median_runs(values: list[float]) -> float:
    return statistics.median(values)


def collect(direct: Target, gateway: Target, args: argparse.Namespace) -> dict[str, Any]:
    """Every figure, direct and through the gateway, in one event loop; latency and
    throughput alternate between the two ``args.repeats`` times (medians are kept)."""

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {"repeats": args.repeats}
        lat: dict[str, list[float]] = {k: [] for k in ("d50", "g50", "d99", "g99", "a50", "a99")}
        rps: dict[str, list[float]] = {"direct": [], "gateway": []}
        for _ in range(args.repeats):
            d = await latency(direct, args.requests, 200)
            g = await latency(gateway, args.requests, 200)
            lat["d50"].append(d["p50_s"])
            lat["g50"].append(g["p50_s"])
            lat["d99"].append(d["p99_s"])
            lat["g99"].append(g["p99_s"])
            lat["a50"].append(g["p50_s"] - d["p50_s"])
            lat["a99"].append(g["p99_s"] - d["p99_s"])
            rps["direct"].append(await throughput(direct, 10, args.seconds))
            rps["gateway"].append(await throughput(gateway, 10, args.seconds))
        out["latency"] = {k: _median_runs(v) for k, v in lat.items()}
        out["latency_runs"] = lat
        out["rps"] = {k: _median_runs(v) for k, v in rps.items()}
        out["rps_runs"] = rps
        for label, count, rounds in (("streams", 20, 3), ("big", args.big_streams, 1)):
            if not count:
                continue
            d_st = await stream_figures(direct, count, rounds, INTERVAL_MS / 1000, CHUNKS)
            g_st = await stream_figures(gateway, count, rounds, INTERVAL_MS / 1000, CHUNKS)
            d_delays, g_delays = d_st.pop("chunk_delays"), g_st.pop("chunk_delays")
            d_st["added_delay_p99_s"] = percentile(added_delays(d_delays, d_delays), 0.99)
            g_st["added_delay_p99_s"] = percentile(added_delays(d_delays, g_delays), 0.99)
            d_rel, g_rel = after_first(d_delays), after_first(g_delays)
            d_st["added_chunk_p99_s"] = percentile(added_delays(d_rel, d_rel), 0.99)
            g_st["added_chunk_p99_s"] = percentile(added_delays(d_rel, g_rel), 0.99)
            d_st["delay_max_s"] = max(max(x) for x in d_delays)
            g_st["delay_max_s"] = max(max(x) for x in g_delays)
            out[label] = {"direct": d_st, "gateway": g_st, "concurrency": count}
        return out

    return asyncio.run(run())


def rows(figures: dict[str, Any]) -> list[Row]:
    lat, rps = figures["latency"], figures["rps"]
    out = [
        Row("added latency p50, c=1", lat["d50"], lat["g50"], "ms", "<= +0.300 ms", 1000,
            lat["a50"]),
        Row("added latency p99, c=1", lat["d99"], lat["g99"], "ms", "<= +1.000 ms", 1000,
            lat["a99"]),
        Row("throughput, c=10", rps["direct"], rps["gateway"], "req/s",
            ">= 10x LiteLLM (--peer)"),
    ]  # fmt: skip
    for label in ("streams", "big"):
        if label not in figures:
            continue
        d, g = figures[label]["direct"], figures[label]["gateway"]
        name = f"{figures[label]['concurrency']} streams"
        out += [
            Row(f"time to first token p50, {name}", d["first_chunk_p50_s"],
                g["first_chunk_p50_s"], "ms", "added: as low as it goes", 1000),
            Row(f"time to first token max, {name}", d["first_chunk_max_s"],
                g["first_chunk_max_s"], "ms", "no stall", 1000),
            Row(f"added per-chunk delay p99, {name}", d["added_chunk_p99_s"],
                g["added_chunk_p99_s"], "ms", "<= +0.050 ms", 1000, g["added_chunk_p99_s"]),
            Row(f"added delay incl. first token p99, {name}", d["added_delay_p99_s"],
                g["added_delay_p99_s"], "ms", "", 1000, g["added_delay_p99_s"]),
            Row(f"latest chunk vs schedule, {name}", d["delay_max_s"], g["delay_max_s"], "ms",
                "no stall", 1000),
            Row(f"events per stream (min), {name}", d["events_min"], g["events_min"], "",
                f"== direct ({CHUNKS} + usage + [DONE])"),
            Row(f"streams with coalesced chunks, {name}", d["coalesced_streams"],
                g["coalesced_streams"], "", "0"),
        ]  # fmt: skip
    return out


def _idle_rss_restarted(workdir: Path) -> int:
    """Idle RSS of ``modelyard serve`` started again over the store the first run created and
    migrated (the steady state: the first start also applies the migrations), after its first
    answer, like the first figure."""
    process, *_ = _serve(workdir)
    try:
        return tree_rss(process.pid, exclude=str(BACKEND_SCRIPT))
    finally:
        stop_group(process)


def report(figures: dict[str, Any], idle_rss: int, steady_rss: int, first_s: float) -> None:
    print(
        f"{'figure':<40} {'direct':>10} {'gateway':>10} {'added':>10} {'unit':<6} {'ratio':<8} goal"
    )
    for row in rows(figures):
        print(row.line())
    for label, rss in (("first start", idle_rss), ("existing store", steady_rss)):
        print(f"{'modelyard serve idle RSS, ' + label:<40} {rss / 2**20:>21.1f} {'':>10} MB     "
              f"{'':<8} <= 60 MB")  # fmt: skip
    print(f"{'start to first answer':<40} {first_s:>21.3f} {'':>10} s")
    print(f"(latency and throughput: median of {figures['repeats']} alternating runs)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gateway vs direct, one run")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
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
            figures = collect(Target(backend_url), Target(url), args)
        finally:
            stop_group(process)
        try:
            steady_rss = _idle_rss_restarted(Path(folder))
        except PeerError as exc:
            print(exc, file=sys.stderr)
            return 1
    report(figures, idle_rss, steady_rss, first_s)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    extra = {
        "idle_rss_mb": round(idle_rss / 2**20, 1),
        "idle_rss_existing_store_mb": round(steady_rss / 2**20, 1),
        "start_to_first_answer_s": first_s,
    }
    RESULTS.write_text(json.dumps({**figures, **extra}, indent=2))
    if args.peer:
        from bench.gateway.peer import run_peer_comparison

        run_peer_comparison()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
