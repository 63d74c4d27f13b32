"""`modelyard stats [--json]`: request figures per model and instance, read from the store.

Works without a running server: it reads what the gateway has written (up to one flush
interval behind a live server).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from modelyard.cli.context import console, services


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command("stats")(stats)


def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Requests, success rate, time to first token and tokens/s per model and instance."""
    with services(ctx) as built:
        built.figures.load_totals()
        snapshot = built.figures.snapshot()
    snapshot.pop("pending", None)
    snapshot.pop("dropped", None)
    if as_json:
        sys.stdout.write(json.dumps(snapshot, indent=2) + "\n")
        return
    if not snapshot["models"]:
        console.print("no requests recorded yet", highlight=False)
        return
    console.print(_table(snapshot["models"]))


def _table(models: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="requests per model")
    table.add_column("model / instance", no_wrap=True)
    for name in ("requests", "success", "TTFT p50", "TTFT p95", "latency p50", "tokens/s"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("tokens in/out", justify="right", no_wrap=True)
    table.add_column("last", no_wrap=True)
    for model_id, figures in models.items():
        table.add_row(f"[bold]{model_id}[/bold]", *_cells(figures))
        for instance_id, inst in figures["instances"].items():
            table.add_row(f"  {instance_id}", *_cells(inst), style="dim")
    return table


def _cells(figures: dict[str, Any]) -> list[str]:
    rate = figures["success_rate"]
    tps = figures["tokens_per_s"]
    last = figures["last_request_at"]
    return [
        str(figures["requests"]),
        "-" if rate is None else f"{rate:.1%}",
        _duration(figures["ttft_p50_s"]),
        _duration(figures["ttft_p95_s"]),
        _duration(figures["latency_p50_s"]),
        "-" if tps is None else f"{tps:.1f}",
        f"{figures['tokens_in']}/{figures['tokens_out']}",
        "-" if last is None else datetime.fromtimestamp(last).strftime("%Y-%m-%d %H:%M:%S"),
    ]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"
