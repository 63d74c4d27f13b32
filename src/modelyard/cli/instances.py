"""`modelyard instances ...`: create, list, set, start, stop, restart, delete, logs.

With a manager running (``modelyard serve``) every command goes through its /api, so the one
process that owns the instances makes the change. Without one, create, list, set and delete
work on the store directly (every instance shows stopped); start, stop, restart and
``logs -f`` need the manager and say so in one line. Each command is written once, over
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
from rich.text import Text

from modelyard.cli.context import console
from modelyard.cli.control import InstanceControl, View, instance_control
from modelyard.errors import BadRequest, PresetNotFound
from modelyard.routing.eviction import format_bytes

PERSONA_EXCERPT = 40  # characters of the system prompt `instances list` shows

app = typer.Typer(help="Create, list, start and stop instances of models.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Catalog model id.")],
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=99)] = 1,
    name: Annotated[str | None, typer.Option("--name", help="Display name (<= 64).")] = None,
    system_prompt: Annotated[str | None, typer.Option("--system-prompt")] = None,
    preset: Annotated[
        str | None, typer.Option("--preset", help="Take the system prompt from this preset.")
    ] = None,
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
        config["system_prompt"] = _prompt(control, system_prompt, preset)
        views = control.create(model, config, count)
    for view in views:
        console.print(f"created {view['id']} on port {view['port']}", highlight=False)


@app.command("set")
def set_instance(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(metavar="ID")],
    name: Annotated[
        str | None, typer.Option("--name", help="Display name (<= 64; '' clears it).")
    ] = None,
    system_prompt: Annotated[
        str | None, typer.Option("--system-prompt", help="The persona ('' clears it).")
    ] = None,
    preset: Annotated[
        str | None, typer.Option("--preset", help="Take the system prompt from this preset.")
    ] = None,
    web_search: Annotated[bool | None, typer.Option("--web-search/--no-web-search")] = None,
) -> None:
    """Change an instance's persona: display name, system prompt, web search. Settings left
    out keep their value; a running instance uses the new persona from its next request."""
    with instance_control(ctx) as control:
        changes: dict[str, Any] = {}
        if name is not None:
            changes["display_name"] = name
        if system_prompt is not None or preset is not None:
            changes["system_prompt"] = _prompt(control, system_prompt, preset)
        if web_search is not None:
            changes["web_search"] = web_search
        if not changes:
            raise BadRequest(
                "nothing to change: give --name, --system-prompt, --preset or "
                "--web-search/--no-web-search"
            )
        view = control.update(instance_id, changes)
    config = view["config"]
    shown = {
        "display_name": f"name {_quoted(config['display_name'])}",
        "system_prompt": f"system prompt {_quoted(_excerpt(config['system_prompt']))}",
        "web_search": f"web search {'on' if config['web_search'] else 'off'}",
    }
    done = "; ".join(shown[key] for key in changes)
    console.print(f"{view['id']}: {done}", highlight=False, markup=False)


def _prompt(control: InstanceControl, system_prompt: str | None, preset: str | None) -> str | None:
    """The system prompt given, or the prompt of ``preset``. Raises BadRequest for both,
    PresetNotFound for an unknown preset."""
    if preset is None:
        return system_prompt
    if system_prompt is not None:
        raise BadRequest("give --system-prompt or --preset, not both", param="preset")
    for found in control.presets():
        if found["name"] == preset:
            prompt: str = found["prompt"]
            return prompt
    raise PresetNotFound(
        f"no preset '{preset}'; `modelyard presets list` shows them", param="preset"
    )


def _excerpt(text: str | None) -> str | None:
    """The first line of ``text``, cut to PERSONA_EXCERPT characters."""
    if not text:
        return None
    line = text.strip().splitlines()[0]
    return line if len(line) <= PERSONA_EXCERPT else line[: PERSONA_EXCERPT - 1] + "…"


def _quoted(text: str | None) -> str:
    return "(none)" if text is None else f"'{text}'"


@app.command("list")
def list_instances(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
) -> None:
    """Every instance: name, status, port, pid, uptime, memory estimate and measured, and
    the start of its persona (system prompt; "+ web search" when that is on)."""
    with instance_control(ctx) as control:
        views = control.list()
    if as_json:
        sys.stdout.write(json.dumps(views, indent=2, default=str) + "\n")
        return
    table = Table()
    # Ids are what a user copies into the next command: never wrapped.
    table.add_column("id", no_wrap=True, min_width=max((len(v["id"]) for v in views), default=2))
    for column in ("name", "model", "status", "port", "pid", "uptime", "estimate", "measured"):
        table.add_column(column, overflow="fold")
    table.add_column("persona", overflow="fold", max_width=PERSONA_EXCERPT + 14)
    for view in views:
        status = view["state"] + (f": {view['error'].splitlines()[0]}" if view["error"] else "")
        table.add_row(
            view["id"],
            Text(view["config"]["display_name"] or ""),  # the user's text: never markup
            view["model_id"],
            status,
            str(view["port"]),
            str(view["pid"] or ""),
            _duration(view["uptime_s"]),
            format_bytes(view["memory_estimate"]) if view["memory_estimate"] else "?",
            format_bytes(view["memory_measured"]) if view["memory_measured"] else "",
            Text(_persona(view["config"])),
        )
    console.print(table)


def _persona(config: dict[str, Any]) -> str:
    excerpt = _excerpt(config["system_prompt"])
    parts = [f'"{excerpt}"'] if excerpt else []
    if config["web_search"]:
        parts.append("+ web search")
    return " ".join(parts)


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
