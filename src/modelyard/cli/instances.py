"""`modelyard instances ...`: create, list, start, stop, restart, delete, logs.

With a manager running (``modelyard serve``) every command goes through its /api, so the one
process that owns the instances makes the change. Without one, create, list and delete work
on the store directly (every instance shows stopped); start, stop, restart and ``logs -f``
need the manager and say so in one line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from modelyard.cli.context import console, services, state
from modelyard.cli.manager import ManagerClient
from modelyard.fleet.logs import log_path, read_tail
from modelyard.routing.eviction import format_bytes

app = typer.Typer(help="Create, list, start and stop instances of models.", no_args_is_help=True)

ACTOR = "cli"


def _client(ctx: typer.Context) -> ManagerClient:
    return ManagerClient(state(ctx).settings())


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
    with _client(ctx) as client:
        if client.running():
            body = {"model": model, "count": count, "config": config}
            views = client.call("POST", "/api/instances", json=body)
        else:
            with services(ctx) as built:
                created = asyncio.run(built.fleet.create(model, config, count, actor=ACTOR))
                views = [v.to_dict() for v in created]
    for view in views:
        console.print(f"created {view['id']} on port {view['port']}", highlight=False)


@app.command("list")
def list_instances(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
) -> None:
    """Every instance: status, port, pid, uptime, memory estimate and measured."""
    with _client(ctx) as client:
        if client.running():
            views: list[dict[str, Any]] = client.call("GET", "/api/instances")
        else:
            with services(ctx) as built:
                views = [v.to_dict() for v in built.fleet.instances()]
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


def _act(ctx: typer.Context, instance_id: str, action: str) -> None:
    with _client(ctx) as client:
        if not client.running():
            raise client.not_running()
        started = time.perf_counter()
        view = client.call("POST", f"/api/instances/{instance_id}/{action}")
    elapsed = time.perf_counter() - started
    where = f" on port {view['port']}" if view["state"] == "ready" else ""
    console.print(f"{view['id']}: {view['state']}{where} ({elapsed:.1f}s)", highlight=False)


@app.command("start")
def start(ctx: typer.Context, instance_id: Annotated[str, typer.Argument()]) -> None:
    """Start an instance in the running manager; waits until it is ready."""
    _act(ctx, instance_id, "start")


@app.command("stop")
def stop(ctx: typer.Context, instance_id: Annotated[str, typer.Argument()]) -> None:
    """Stop an instance in the running manager."""
    _act(ctx, instance_id, "stop")


@app.command("restart")
def restart(ctx: typer.Context, instance_id: Annotated[str, typer.Argument()]) -> None:
    """Restart an instance in the running manager; waits until it is ready."""
    _act(ctx, instance_id, "restart")


@app.command("delete")
def delete(ctx: typer.Context, instance_id: Annotated[str, typer.Argument()]) -> None:
    """Stop (if running) and delete an instance; its port is freed."""
    with _client(ctx) as client:
        if client.running():
            client.call("DELETE", f"/api/instances/{instance_id}")
        else:
            with services(ctx) as built:
                asyncio.run(built.fleet.delete(instance_id, actor=ACTOR))
    console.print(f"deleted {instance_id}", highlight=False)


@app.command("logs")
def logs(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument()],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", min=1)] = 50,
) -> None:
    """The instance's last log lines; with -f, follow them from the running manager."""
    with _client(ctx) as client:
        if follow:
            if not client.running():
                raise client.not_running()
            try:
                for line in client.stream_lines(
                    f"/api/instances/{instance_id}/logs?follow=1&lines={lines}"
                ):
                    sys.stdout.write(line + "\n")
                    sys.stdout.flush()
            except KeyboardInterrupt:
                return
            return
        if client.running():
            tail = client.call("GET", f"/api/instances/{instance_id}/logs?lines={lines}")["lines"]
        else:
            with services(ctx) as built:
                built.fleet.get(instance_id)  # InstanceNotFound for an unknown id
                tail = read_tail(log_path(built.settings.logs_dir, instance_id), lines)
    for line in tail:
        sys.stdout.write(line + "\n")
