"""`modelyard instances ...`: create, list, start, stop, restart, delete, logs.

With a manager running (``modelyard serve``) every command goes through its /api, so the one
process that owns the instances makes the change. Without one, create, list and delete work
on the store directly (every instance shows stopped); start, stop, restart and ``logs -f``
need the manager and say so in one line. Each command is written once, over
``InstanceControl`` (see ``modelyard.cli.control``, which picks the implementation).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from modelyard.cli.context import console
from modelyard.cli.control import InstanceControl, View, instance_control
from modelyard.routing.eviction import format_bytes

app = typer.Typer(help="Create, list, start and stop instances of models.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Catalog model id.")],
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=99)] = 1,
    name: Annotated[str | None, typer.Option("--name", help="Display name (<= 64).")] = None,
    system_prompt: Annotated[str | None, typer.Option("--system-prompt")] = None,
    web_search: Annotated[bool, typer.Option("--web-search")] = False,
    ctx_size: Annotated[int | None, typer.Option("--ctx", min=1, help="Context size.")] = None,
    on_demand: Annotated[bool, typer.Option("--on-demand", help="Start on first request.")] = False,
    idle_ttl: Annotated[
        float | None, typer.Option("--idle-ttl", help="Stop after S seconds idle.")
    ] = None,
    pinned: Annotated[bool, typer.Option("--pinned", help="Never evicted.")] = False,
    autostart: Annotated[
        bool, typer.Option("--autostart", help="Start with `modelyard serve`.")
    ] = False,
) -> None:
    """Create COUNT instances of MODEL (ids MODEL:01, MODEL:02...)."""
    config: dict[str, Any] = {
        "display_name": name,
        "system_prompt": system_prompt,
        "web_search": web_search,
        "on_demand": on_demand,
        "idle_ttl": idle_ttl,
        "pinned": pinned,
        "autostart": autostart,
        "engine_args": {"ctx": ctx_size},
    }
    with instance_control(ctx) as control:
        views = control.create(model, config, count)
    for view in views:
        console.print(f"created {view['id']} on port {view['port']}", highlight=False)


@app.command("list")
def list_instances(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
) -> None:
    """Every instance: status, port, pid, uptime, memory estimate and measured."""
    with instance_control(ctx) as control:
        views = control.list()
    if as_json:
        sys.stdout.write(json.dumps(views, indent=2, default=str) + "\n")
        return
    table = Table()
    # Ids are what a user copies into the next command: never wrapped.
    table.add_column("id", no_wrap=True, min_width=max((len(v["id"]) for v in views), default=2))
    for column in ("model", "status", "port", "pid", "uptime", "estimate", "measured"):
        table.add_column(column, overflow="fold")
    for view in views:
        status = view["state"] + (f": {view['error'].splitlines()[0]}" if view["error"] else "")
        table.add_row(
            view["id"],
            view["model_id"],
            status,
            str(view["port"]),
            str(view["pid"] or ""),
            _duration(view["uptime_s"]),
            format_bytes(view["memory_estimate"]) if view["memory_estimate"] else "?",
            format_bytes(view["memory_measured"]) if view["memory_measured"] else "",
        )
    console.print(table)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _act(ctx: typer.Context, action: Callable[[InstanceControl], View]) -> None:
    with instance_control(ctx) as control:
        started = time.perf_counter()
        view = action(control)
    elapsed = time.perf_counter() - started
    where = f" on port {view['port']}" if view["state"] == "ready" else ""
    console.print(f"{view['id']}: {view['state']}{where} ({elapsed:.1f}s)", highlight=False)


@app.command("start")
def start(ctx: typer.Context, instance_id: Annotated[str, typer.Argument()]) -> None:
    """Start an instance in the running manager; waits until it is ready."""
    _act(ctx, lambda control: control.start(instance_id))


@app.command("stop")
def stop(ctx: typer.Context, instance_id: Annotated[str, typer.Argument()]) -> None:
    """Stop an instance in the running manager."""
    _act(ctx, lambda control: control.stop(instance_id))


@app.command("restart")
def restart(ctx: typer.Context, instance_id: Annotated[str, typer.Argument()]) -> None:
    """Restart an instance in the running manager; waits until it is ready."""
    _act(ctx, lambda control: control.restart(instance_id))


@app.command("delete")
def delete(ctx: typer.Context, instance_id: Annotated[str, typer.Argument()]) -> None:
    """Stop (if running) and delete an instance; its port is freed."""
    with instance_control(ctx) as control:
        control.delete(instance_id)
    console.print(f"deleted {instance_id}", highlight=False)


@app.command("logs")
def logs(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument()],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", min=1)] = 50,
) -> None:
    """The instance's last log lines; with -f, follow them from the running manager."""
    with instance_control(ctx) as control:
        if follow:
            try:
                for line in control.follow_logs(instance_id, lines):
                    sys.stdout.write(line + "\n")
                    sys.stdout.flush()
            except KeyboardInterrupt:
                return
            return
        tail = control.logs(instance_id, lines)
    for line in tail:
        sys.stdout.write(line + "\n")
