"""`modelyard recommend`, `modelyard compat` and `modelyard deployment`: advice from the running
manager."""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard.cli.context import console
from modelyard.cli.manager import connect
from modelyard.errors import ValidationFailed
from modelyard.routing.eviction import format_bytes

PRIORITIES = ("speed", "balanced", "quality")


def recommend(
    ctx: typer.Context,
    memory_gb: Annotated[float, typer.Argument(help="Memory the model may use, GiB.")],
    priority: Annotated[str, typer.Argument(help="speed, balanced or quality.")] = "balanced",
) -> None:
    """The best model for this much memory and this priority, with reasons."""
    if priority not in PRIORITIES:  # else the manager's 422 names pydantic's literal
        raise ValidationFailed(
            f"priority {priority!r} is not one of {', '.join(PRIORITIES)}", param="priority"
        )
    with connect(ctx) as client:
        result = client.call(
            "POST", "/api/models/recommend", json={"memory_gb": memory_gb, "priority": priority}
        )
    best = result["recommended"]
    for reason in result["reasons"]:
        console.print(reason, highlight=False)
    if best is not None:
        console.print(f"[bold]{best['model_id']}[/bold] (score {best['score']})", highlight=False)
        for reason in best["reasons"]:
            console.print(f"  {reason}", highlight=False)
    for other in result["alternatives"]:
        fits = "fits" if other["fits"] else "does not fit"
        console.print(
            f"  also: {other['model_id']} ({fits}, score {other['score']})", highlight=False
        )


def compat(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model id.")],
    ctx_size: Annotated[int | None, typer.Option("--ctx", help="Context length.")] = None,
) -> None:
    """Would one more instance of the model fit now, and what would have to stop."""
    with connect(ctx) as client:
        body = {"model": model, "ctx": ctx_size}
        result = client.call("POST", "/api/models/check_compatibility", json=body)
    need = format_bytes(result["estimate"]["total_bytes"])
    budget = format_bytes(result["budget_bytes"])
    if result["fits"]:
        verdict = "fits"
    elif result["fits_after_stopping"]:
        verdict = "fits after stopping " + ", ".join(result["would_stop"])
    else:
        verdict = "does not fit"
    console.print(
        f"{result['model']} at ctx {result['ctx']}: needs {need} "
        f"({result['estimate']['device']}), {format_bytes(result['free_bytes'])} free of "
        f"{budget}: {verdict}",
        highlight=False,
    )
    if result["reason"]:
        console.print(f"  {result['reason']}", highlight=False)
    for warning in result["warnings"]:
        console.print(f"  [yellow]warning:[/yellow] {warning}", highlight=False)


def deployment(ctx: typer.Context) -> None:
    """The deployment profile in force (picked from the GPUs, or set by the config or the
    active profile), what admission enforces, why, and which named profiles fit."""
    with connect(ctx) as client:
        result = client.call("GET", "/api/models/deployment")
    name = result["name"] or "(none fits: from the hardware)"
    budgets = ", ".join(format_bytes(b) for b in result["device_budgets"]) or "none"
    enforced = "enforced" if result["enforced"] else "not enforced"
    console.print(f"[bold]{name}[/bold] ({result['device']}, {result['source']})", highlight=False)
    console.print(
        f"  budget {format_bytes(result['memory_budget_bytes'])} (per device: {budgets}), "
        f"{result['max_models_loaded']} model(s) at once, ctx {result['ctx']}, "
        f"{result['parallel']} parallel: {enforced}",
        highlight=False,
    )
    for reason in result["reasons"]:
        console.print(f"  {reason}", highlight=False)
    for profile in result["profiles"]:
        fits = "fits" if profile["fits"] else "does not fit"
        console.print(f"  {profile['name']}: {profile['description']} ({fits})", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend)
    app.command("compat")(compat)
    app.command("deployment")(deployment)
