"""Swap time: switching a vLLM instance out and back by sleep/wake against stop/start.

The fake ``vllm`` (``tests/fakes/fake_vllm.py``) is given the published delays scaled down by
``SCALE`` so the bench runs in seconds: a full reload of about 48 s per switch (vLLM binds its
port only once loaded) and a level-1 wake of 0.26-0.82 s (vLLM's sleep-mode figures). One
switch is: take the instance out (``stop_instance``, or ``sleep_instance``), then bring it
back until ready (``start_instance``). Both ways run in the same run, through the real fleet
over the real process, so the fleet's own overhead (health polls, ``/is_sleeping`` polls) is
in both; the ratio is what sleep mode buys. Figures are also shown scaled back up (x SCALE),
which overstates the fleet's fixed overhead by the same factor.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from modelyard.catalog.model import Model
from modelyard.engines.registry import EngineRegistry
from modelyard.engines.vllm import VllmEngine
from modelyard.fleet.fleet import Fleet
from modelyard.settings import load_settings
from modelyard.store import Store

SCALE = 20
RELOAD_S = 48.0  # published: a full reload per switch
WAKE_S = (0.26, 0.82)  # published: a level-1 wake
RUNS = 3
FAKE = Path(__file__).resolve().parents[2] / "tests" / "fakes" / "fake_vllm.py"
GIB = 1024**3


def _port_range() -> tuple[int, int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        low: int = sock.getsockname()[1]
    return (low, low + 50) if low + 50 <= 65535 else (low - 50, low)


def _model(folder: Path) -> Model:
    weights = folder / "qwen"
    weights.mkdir(exist_ok=True)
    config = {"num_hidden_layers": 2, "num_attention_heads": 2, "hidden_size": 64}
    (weights / "config.json").write_text(json.dumps(config))
    (weights / "model.safetensors").write_bytes(b"\0" * 4096)
    return Model(id="qwen", name="qwen", source="curated", engine="vllm", path=str(weights))


async def _switches(folder: Path, wake_s: float, sleep: bool) -> list[float]:
    """Seconds per switch (out, then back until ready), ``RUNS`` of them."""
    flags = f"--load-delay {RELOAD_S / SCALE} --wake-delay {wake_s / SCALE}"
    vllm = {"binary": f"{sys.executable} {FAKE} {flags}", "sleep_mode": sleep}
    data = folder / f"{'sleep' if sleep else 'stop'}-{wake_s}"
    settings = load_settings(
        data_dir=data, fleet={"port_range": _port_range(), "start_timeout_s": 60}, vllm=vllm
    )
    store = Store.open(settings.db_path)
    model = _model(folder)
    engines = EngineRegistry({"vllm": VllmEngine(settings.vllm, {0: 80 * GIB})})
    fleet = Fleet(settings, store, engines, lambda _: model)
    await fleet.start()
    times: list[float] = []
    try:
        (view,) = await fleet.create("qwen")
        await fleet.start_instance(view.id)
        for _ in range(RUNS):
            began = time.perf_counter()
            if sleep:
                out = await fleet.sleep_instance(view.id)
                assert out.state == "sleeping", out.state
            else:
                await fleet.stop_instance(view.id)
            back = await fleet.start_instance(view.id)
            times.append(time.perf_counter() - began)
            assert back.state == "ready"
    finally:
        await fleet.aclose()
        store.close()
    return times


async def _measure(folder: Path) -> dict[float, tuple[float, float]]:
    """Per published wake figure: median seconds per switch, (stop/start, sleep/wake)."""
    reload = statistics.median(await _switches(folder, WAKE_S[0], sleep=False))
    return {
        wake: (reload, statistics.median(await _switches(folder, wake, sleep=True)))
        for wake in WAKE_S
    }


def run() -> None:
    """Print seconds per switch both ways, scaled back up, and the ratio."""
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as folder:
        results = asyncio.run(_measure(Path(folder)))
    print(f"swap time (fake vllm, published delays / {SCALE}; median of {RUNS} switches)")
    print(f"{'wake':>6} {'stop/start':>11} {'sleep/wake':>11} {'x' + str(SCALE):>14}  ratio")
    for wake, (reload, woken) in results.items():
        scaled = f"{reload * SCALE:.1f}/{woken * SCALE:.2f}s"
        print(
            f"{wake:>5g}s {reload * 1000:>9.0f}ms {woken * 1000:>9.0f}ms {scaled:>14}"
            f"  {reload / woken:.0f}x"
        )
    print(
        f"published: {RELOAD_S:g} s reload vs {WAKE_S[0]}-{WAKE_S[1]} s wake "
        f"= {RELOAD_S / WAKE_S[1]:.0f}-{RELOAD_S / WAKE_S[0]:.0f}x"
    )


if __name__ == "__main__":
    run()
