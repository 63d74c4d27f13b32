"""`modelyard serve`: the long-lived manager (fleet, /api, later the /v1 gateway).

Runs uvicorn in this process's main thread, so every server is spawned from that thread (the
parent-death signal depends on it, see ``modelyard.fleet.spawn``). Ctrl-C and SIGTERM make
uvicorn shut down, and the app's lifespan stops every instance before the process exits.
"""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from modelyard.api.auth import check_bind
from modelyard.app import create_app
from modelyard.cli.context import err_console, state
from modelyard.services import build_services
from modelyard.settings import ServerSettings

_GRACEFUL_S = 5


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Listen address.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Listen port.")] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", help="Activate this profile at start (or MODELYARD_PROFILE)."),
    ] = None,
) -> None:
    """Run the manager: instances, their supervision and the HTTP API, until stopped."""
    settings = state(ctx).settings()
    bind_host = host or settings.server.host
    bind_port = port or settings.server.port
    check_bind(settings, bind_host)
    server = ServerSettings(host=bind_host, port=bind_port)
    chosen = {"server": server} | ({"profile": profile} if profile else {})
    built = build_services(settings.model_copy(update=chosen))
    try:
        models = built.catalog.load()  # scans on the first run (the default model too)
        err_console.print(
            f"modelyard: {len(models)} models, {len(built.fleet.instances())} instances; "
            f"serving on http://{bind_host}:{bind_port}",
            highlight=False,
        )
        config = uvicorn.Config(
            create_app(built),
            host=bind_host,
            port=bind_port,
            log_level="warning",
            access_log=False,  # per-request log lines cost the hot path; figures record requests
            timeout_graceful_shutdown=_GRACEFUL_S,
        )
        uvicorn.Server(config).run()
    finally:
        built.close()


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command("serve")(serve)
