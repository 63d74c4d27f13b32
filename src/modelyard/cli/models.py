"""`modelyard models ...`: list, show and adjust catalog entries; export and import overrides.

``set`` and ``import`` change the store: with a manager running they go through its /api (it
owns the store, and its catalog must see the change), else they work on the store directly.
``list``, ``show`` and ``export`` read the store.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table

from modelyard.catalog.model import Model
from modelyard.catalog.overrides import TIERS, check_tier
from modelyard.cli.context import actor, console, services
from modelyard.cli.manager import ManagerClient, reachable
from modelyard.cli.scan import id_width, params_text, traits
from modelyard.errors import BadRequest, ModelNotFound, ValidationFailed

app = typer.Typer(help="List, show and adjust the models in the catalog.", no_args_is_help=True)


@app.command("list")
def list_models(
    ctx: typer.Context,
    tier: Annotated[
        str | None, typer.Option("--tier", help=f"Only this tier ({', '.join(TIERS)}).")
    ] = None,
    enabled: Annotated[bool, typer.Option("--enabled", help="Only enabled models.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
) -> None:
    """Every model in the catalog (scanning first if it never was)."""
    wanted = check_tier(tier) if tier is not None else None
    with services(ctx) as built:
        models = list(built.catalog.load().models)
    models = [
        m for m in models if (wanted is None or m.tier == wanted) and (m.enabled or not enabled)
    ]
    if as_json:
        _print_json([m.to_dict() for m in models])
        return
    errors = any(m.error for m in models)
    table = Table()
    table.add_column("id", min_width=id_width(models))
    for column in ("tier", "params", "quant", "context", "traits", "source"):
        table.add_column(column)
    if errors:
        table.add_column("error", overflow="fold")
    for model in models:
        row = [
            model.id,
            _tier_text(model),
            params_text(model.parameters_b),
            model.quantization or "?",
            str(model.context_length or "?"),
            traits(model),
            model.source,
        ]
        table.add_row(*row, *([model.error or ""] if errors else []))
    console.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Everything known about one model."""
    with services(ctx) as built:
        model = built.catalog.load().get(model_id)
    _show(model, as_json)


@app.command("set")
def set_model(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument(metavar="ID")],
    tier: Annotated[str | None, typer.Option("--tier", help=", ".join(TIERS))] = None,
    thinking: Annotated[
        bool | None, typer.Option("--thinking/--no-thinking", help="A reasoning model or not.")
    ] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="Offered for use or not.")
    ] = None,
    roles: Annotated[
        list[str] | None,
        typer.Option("--role", metavar="NAME=PRIORITY", help="A role with priority 0-100."),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="The name shown.")] = None,
    clear: Annotated[
        list[str] | None,
        typer.Option("--clear", metavar="FIELD", help="Forget an override (tier, roles...)."),
    ] = None,
) -> None:
    """Override what discovery decided; overrides survive rescans. ``--clear`` runs first."""
    parsed_roles = _parse_roles(roles or [])
    changes: dict[str, Any] = {
        "tier": tier,
        "thinking": thinking,
        "enabled": enabled,
        "display_name": name,
    }
    changes = {key: value for key, value in changes.items() if value is not None}
    client = reachable(ctx)
    if client is not None:
        with client:
            model = _set_through(client, model_id, clear or [], changes, parsed_roles)
        _show(model, as_json=False)
        return
    with services(ctx) as built:
        catalog = built.catalog
        who = actor(built.settings)
        model = catalog.load().get(model_id)
        for field_name in clear or []:
            model = catalog.clear_override(model_id, field_name, actor=who)
        if parsed_roles:
            current = catalog.overrides_for(model_id).roles or {}
            changes["roles"] = {**current, **parsed_roles}
        if changes:  # the fields left out stay UNSET
            model = catalog.set_overrides(model_id, actor=who, **changes)
    _show(model, as_json=False)


def _set_through(
    client: ManagerClient,
    model_id: str,
    clear: list[str],
    changes: dict[str, Any],
    roles: dict[str, int],
) -> Model:
    """``models set`` through the manager's /api/models routes; returns the model after."""
    path = f"/api/models/{quote(model_id, safe='')}"
    answer: Any = None
    for field_name in clear:
        answer = client.call("DELETE", f"{path}/overrides/{quote(field_name, safe='')}")
    if roles:
        overrides = client.call("POST", "/api/models/export")["overrides"]
        changes["roles"] = {**(overrides.get(model_id, {}).get("roles") or {}), **roles}
    for key, value in changes.items():
        answer = client.call("PUT", f"{path}/{key}", json={key: value})
    if answer is None:  # nothing to change: show the model as it is
        registry = client.call("GET", "/api/models/registry")
        found = [m for m in registry["models"] if m["id"] == model_id]
        if not found:
            raise ModelNotFound(f"no model '{model_id}'", param="model")
        answer = found[0]
    return Model.from_dict(answer)


@app.command("export")
def export(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON file to write ('-' for standard output).")],
) -> None:
    """Write the overrides and curated entries as JSON."""
    with services(ctx) as built:
        data = built.catalog.export()
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if str(file) == "-":
        sys.stdout.write(text)
        return
    _write_atomically(file, text)
    console.print(
        f"exported {len(data['overrides'])} overrides and {len(data['curated'])} curated "
        f"entries to {file}",
        highlight=False,
    )


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON file written by `models export`.")],
) -> None:
    """Replace the overrides and imported curated entries with a file's. A bad file changes
    nothing."""
    data = _read_json(file)
    client = reachable(ctx)
    if client is not None:
        with client:
            client.call("POST", "/api/models/import", json=data)
    else:
        with services(ctx) as built:
            built.catalog.import_(data, actor=actor(built.settings))
    console.print(f"imported {file}", highlight=False)


def _parse_roles(values: list[str]) -> dict[str, int]:
    roles: dict[str, int] = {}
    for value in values:
        name, sep, priority = value.partition("=")
        if not sep or not priority.strip().lstrip("-").isdigit():
            raise ValidationFailed(
                f"--role: expected NAME=PRIORITY (e.g. code=80), got {value!r}", param="roles"
            )
        roles[name.strip()] = int(priority)
    return roles


def _read_json(file: Path) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadRequest(f"cannot read {file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BadRequest(f"{file} is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"{file} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def _write_atomically(file: Path, text: str) -> None:
    partial = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(file)
    except OSError as exc:
        raise BadRequest(f"cannot write {file}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _tier_text(model: Model) -> str:
    tier = model.tier or "-"
    return f"{tier}*" if model.tier_overridden else tier


def _show(model: Model, as_json: bool) -> None:
    if as_json:
        _print_json(model.to_dict())
        return
    table = Table(show_header=False, box=None)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in model.to_dict().items():
        if value in (None, (), [], {}, "") and key not in ("error",):
            continue
        if key == "tier" and model.tier_overridden:
            value = f"{value} (overridden)"
        if key == "thinking" and model.thinking_overridden:
            value = f"{value} (overridden)"
        table.add_row(key, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
    console.print(table)
