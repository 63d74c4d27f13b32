"""`modelyard profiles ...`: list and show read the profiles folder directly; create and
delete go through the running manager when one runs (it owns the store their audit entries
go to), else work on the folder; activate asks the running manager (it starts and stops
instances)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
import yaml
from rich.table import Table

from modelyard.cli.context import actor, console, services
from modelyard.cli.manager import connect, reachable
from modelyard.errors import ValidationFailed

app = typer.Typer(help="List, show, create, activate and delete profiles.", no_args_is_help=True)


@app.command("list")
def list_profiles(ctx: typer.Context) -> None:
    """Every profile, whether it is valid, and which one is active."""
    with services(ctx) as built:
        built.catalog.load()  # profiles are checked against it: scan a new catalog first
        profiles = built.profiles
        active = profiles.active_name()
        entries = [profiles.read(name) for name in profiles.names()]
    table = Table()
    for column in ("name", "active", "valid", "description / problems"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        text = (
            (entry.profile.description or "")
            if entry.profile is not None
            else "; ".join(entry.problems)
        )
        table.add_row(entry.name, "*" if entry.name == active else "", _yes(entry), text)
    console.print(table)


def _yes(entry: Any) -> str:
    return "yes" if entry.profile is not None else "[red]no[/red]"


@app.command("show")
def show(ctx: typer.Context, name: str) -> None:
    """One profile as YAML, with its problems if it is not valid."""
    with services(ctx) as built:
        built.catalog.load()
        entry = built.profiles.read(name)
    data = entry.profile.to_yaml_data() if entry.profile is not None else entry.data
    console.print(yaml.safe_dump(data, sort_keys=False), end="", highlight=False, markup=False)
    for problem in entry.problems:
        console.print(f"[red]problem:[/red] {problem}", highlight=False)


@app.command("create")
def create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A YAML or JSON profile file.")],
) -> None:
    """Check a profile file and add it to the profiles folder (every problem is listed)."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValidationFailed(f"{file}: cannot be read as YAML: {exc}", param="file") from None
    client = reachable(ctx)
    if client is not None:
        with client:
            created = client.call("POST", "/api/models/profiles", json=data)
        name, version = created["name"], created["version"]
    else:
        with services(ctx) as built:
            built.catalog.load()
            profile, version = built.profiles.create(data, actor=actor(built.settings))
        name = profile.name
    console.print(f"created profile {name} (version {version})", highlight=False)


@app.command("delete")
def delete(ctx: typer.Context, name: str) -> None:
    """Remove a profile (not the active one)."""
    client = reachable(ctx)
    if client is not None:
        with client:
            client.call("DELETE", f"/api/models/profiles/{quote(name, safe='')}")
    else:
        with services(ctx) as built:
            built.profiles.delete(name, actor=actor(built.settings))
    console.print(f"deleted profile {name}", highlight=False)


@app.command("activate")
def activate(
    ctx: typer.Context,
    name: str,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would change.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Switch the running manager to a profile and show what changed."""
    with connect(ctx) as client:
        query = "?dry_run=true" if dry_run else ""
        result = client.call("POST", f"/api/models/profiles/{name}/activate{query}")
    if as_json:
        console.print_json(json.dumps(result))
        return
    head = "would change" if dry_run else "activated"
    console.print(f"{head} profile {name}", highlight=False)
    for key in ("enable", "disable", "start", "stop", "created"):
        if result.get(key):
            console.print(f"  {key}: {', '.join(result[key])}", highlight=False)
    if dry_run and result.get("create"):
        console.print(f"  create: {len(result['create'])} instance(s)", highlight=False)
    for failure in result.get("failed", []):
        console.print(
            f"  [red]failed[/red] {failure['target']}: {failure['error']}", highlight=False
        )
