"""``modelyard stats`` reads the figures from the store, with no server running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from modelyard.services import Services

from .helpers import NOW, rec

MODELYARD = Path(sys.executable).parent / "modelyard"


def _stats(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [str(MODELYARD), "stats", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


async def _write_some(services: Services) -> None:
    figures = services.figures
    for i in range(10):
        figures.record(rec(request_id=f"a{i}", ttft_s=0.1 + i / 100, started_at=NOW + i))
    figures.record(rec(instance_id="m1:02", outcome="error", status=502, ttft_s=None))
    figures.record(rec(model_id="gemma-3-270m", instance_id="gemma-3-270m:01", tokens_out=40))
    assert await figures.flush() == 12


async def test_stats_table(services: Services) -> None:
    await _write_some(services)
    result = _stats()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    row = next(line for line in lines if " m1 " in line)
    assert " 11 " in row
    assert "90.9%" in row
    assert "145 ms" in row  # p50 TTFT of 0.10..0.19
    assert "21.0" in row  # mean of 20 tokens over 0.91..1.0 s
    assert any("m1:01" in line for line in lines)
    assert any("m1:02" in line and "0.0%" in line for line in lines)
    assert any("gemma-3-270m:01" in line for line in lines)


async def test_stats_json(services: Services) -> None:
    await _write_some(services)
    result = _stats("--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    m1 = data["models"]["m1"]
    assert m1["requests"] == 11
    assert m1["successes"] == 10
    assert set(m1["instances"]) == {"m1:01", "m1:02"}
    assert data["models"]["gemma-3-270m"]["tokens_out"] == 40
    assert data["total"]["requests"] == 12


def test_stats_with_nothing_recorded() -> None:
    result = _stats()
    assert result.returncode == 0, result.stderr
    assert "no requests recorded yet" in result.stdout
