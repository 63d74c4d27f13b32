"""`modelyard scan [PATH...]`: find every model file, then show the catalog by tier."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from modelyard.catalog.catalog import ProgressCallback, ScanProgress, ScanReport
from modelyard.catalog.model import Model
from modelyard.cli.context import actor, console, err_console, services
from modelyard.cli.manager import offline_only, reachable

# Below this many headers to read, a progress bar would only flicker.
PROGRESS_FROM = 20
TIER_ORDER = ("powerful", "balanced", "fast", None)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command("scan")(scan)


def scan(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Folders or .gguf files to scan too; remembered for later scans."),
    ] = None,
    forget: Annotated[
        list[Path] | None,
        typer.Option("--forget", help="Stop scanning a folder named to an earlier scan."),
    ] = None,
) -> None:
    """Find model files (Hugging Face cache, Ollama, folders) and list them by tier.

    With a manager running, the manager scans (its catalog is the one that must change);
    ``--forget`` then refuses, as it has no /api."""
    client = reachable(ctx)
    if client is not None:
        with client:
            if forget:
                raise offline_only(client, "scan --forget")
            # The manager runs elsewhere in the file system: it gets absolute paths.
            body = {"paths": [str(path.expanduser().absolute()) for path in paths or []]}
            found = client.call("POST", "/api/models/rescan", json=body)
            registry = client.call("GET", "/api/models/registry")
        report = _report(found)
        _print_summary([Model.from_dict(m) for m in registry["models"]], report)
        return
    with services(ctx) as built:
        catalog = built.catalog
        for path in catalog.forget_folders(forget or [], actor=actor(built.settings)):
            err_console.print(f"no longer scanning {path}", highlight=False)
        with _progress() as progress:
            report = catalog.rescan(extra_paths=paths or [], progress=progress)
        models = catalog.models()
    _print_summary(models, report)


def _report(data: dict[str, Any]) -> ScanReport:
    """A ScanReport from its ``to_dict()`` (what ``POST /api/models/rescan`` returns)."""
    known = {f.name for f in fields(ScanReport)}
    values: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known
    }
    return ScanReport(**values)


@contextmanager
def _progress() -> Iterator[ProgressCallback]:
    """A callback drawing a bar on a terminal once there are enough headers to read."""
    bar = Progress(
        TextColumn("reading headers"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[found]} files found"),
        console=err_console,
        transient=True,
    )
    task: list[TaskID] = []

    def update(event: ScanProgress) -> None:
        if event.headers_to_read < PROGRESS_FROM or not err_console.is_terminal:
            return
        if not task:
            bar.start()
            task.append(bar.add_task("scan", total=event.headers_to_read, found=0))
        bar.update(task[0], completed=event.headers_read, found=event.files_found)

    try:
        yield update
    finally:
        if task:
            bar.stop()


def _print_summary(models: list[Model], report: ScanReport) -> None:
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    working = [m for m in models if m.error is None]
    for tier in TIER_ORDER:
        group = [m for m in working if m.tier == tier]
        if group:
            console.print(_tier_table(tier, group))
    broken = [m for m in models if m.error is not None]
    if broken:
        table = Table(title=f"not usable ({len(broken)})", title_justify="left")
        table.add_column("id", min_width=id_width(broken))
        table.add_column("path", overflow="fold")
        table.add_column("error", overflow="fold")
        for model in broken:
            table.add_row(model.id, model.path or "", model.error or "")
        console.print(table)
    console.print(_summary_line(len(working), report), highlight=False)


def _tier_table(tier: str | None, models: list[Model]) -> Table:
    title = tier or "no chat tier (embedding)"
    table = Table(title=f"{title} ({len(models)})", title_justify="left")
    table.add_column("id", min_width=id_width(models))
    for column in ("params", "quant", "context", "traits", "source"):
        table.add_column(column, justify="right" if column in ("params", "context") else "left")
    for model in models:
        table.add_row(
            model.id,
            params_text(model.parameters_b),
            model.quantization or "?",
            str(model.context_length or "?"),
            traits(model),
            model.source,
        )
    return table


def id_width(models: list[Model]) -> int:
    """Ids are what people copy into the next command: keep them whole on one line."""
    return min(max((len(m.id) for m in models), default=2), 64)


def params_text(parameters_b: float | None) -> str:
    if not parameters_b:
        return "?"
    return f"{parameters_b:g}B" if parameters_b >= 1 else f"{parameters_b * 1000:.3g}M"


def traits(model: Model) -> str:
    """The short flags shown in tables: thinking, coder, vision, tools, embedding, disabled."""
    flags = [
        name
        for name, on in (
            ("thinking", model.thinking),
            ("coder", model.coder),
            ("vision", model.vision),
            ("tools", model.tools),
            ("embedding", model.embedding),
            ("disabled", not model.enabled),
        )
        if on
    ]
    return " ".join(flags)


def _summary_line(usable: int, report: ScanReport) -> str:
    changes = (
        "no changes"
        if not (report.added or report.removed or report.changed)
        else f"{len(report.added)} added, {len(report.removed)} removed, "
        f"{len(report.changed)} changed"
    )
    return (
        f"{usable} models, {report.errors} not usable; {changes}; "
        f"{report.files} files, {report.headers_read} headers read "
        f"in {report.duration_s * 1000:.0f} ms"
    )
