"""`modelyard serve`: the long-lived manager (fleet, /api, the /v1 gateway, the dashboard).

Runs uvicorn in this process's main thread, so every server is spawned from that thread (the
parent-death signal depends on it, see ``modelyard.fleet.spawn``). Ctrl-C and SIGTERM make
uvicorn shut down, and the app's lifespan stops every instance before the process exits.

The runtime file (``modelyard.cli.runtime``) is claimed here, before the store is opened, and
released here, after the store is closed: this function is the one place that spans the
whole time the process owns the data folder and knows the address it listens on (the app's
lifespan and ``Services`` are also run by tests in-process, over folders no CLI looks at).
For that the release must run however the server stops: uvicorn re-raises the SIGINT or
SIGTERM it caught once it has shut down, so our handler turns that into an exception that
unwinds through the ``finally`` below, and the process then dies by the same signal.

What it prints, on stderr: the banner once the server listens (after the profile's
instances are up, so its counts are true), a line when it starts shutting down, and one when
everything is stopped.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated

import typer
import uvicorn

from modelyard.api.auth import check_bind
from modelyard.app import create_app
from modelyard.cli.context import err_console, state
from modelyard.cli.runtime import claim, release
from modelyard.errors import ConfigError
from modelyard.services import Services, build_services
from modelyard.settings import ServerSettings

_GRACEFUL_S = 5
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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
    url = listen_url(bind_host, bind_port)
    stopped_by: int | None = None
    with _signals_as_exceptions():
        try:
            mine, replaced = claim(settings.runtime_file, url)
        except _Stopped:
            return
        try:
            if replaced is not None:
                err_console.print(f"note: {replaced.note()}", highlight=False, soft_wrap=True)
            _check_free(bind_host, bind_port)
            server = ServerSettings(host=bind_host, port=bind_port)
            chosen = {"server": server} | ({"profile": profile} if profile else {})
            built = build_services(settings.model_copy(update=chosen))
            try:
                config = uvicorn.Config(
                    create_app(built),
                    host=bind_host,
                    port=bind_port,
                    log_level="warning",
                    access_log=False,  # per-request log lines cost the hot path
                    timeout_graceful_shutdown=_GRACEFUL_S,
                )
                _Server(config, built, url).run()
            finally:
                built.close()
        except _Stopped as stop:
            stopped_by = stop.signum
        finally:
            release(settings.runtime_file, mine)
    err_console.print("modelyard: stopped", highlight=False)
    if stopped_by is not None:  # die by the signal, as a shell expects of a stopped program
        signal.signal(stopped_by, signal.SIG_DFL)
        os.kill(os.getpid(), stopped_by)


class _Server(uvicorn.Server):
    """uvicorn's server, saying when it listens and when it starts shutting down."""

    def __init__(self, config: uvicorn.Config, built: Services, url: str) -> None:
        super().__init__(config)
        self._built = built
        self._url = url

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            err_console.print(banner(self._built, self._url), highlight=False, soft_wrap=True)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        running = [v for v in self._built.fleet.instances() if v.state != "stopped"]
        err_console.print(
            f"modelyard: shutting down; stopping {_count(len(running), 'instance')}",
            highlight=False,
        )
        await super().shutdown(sockets)


def banner(built: Services, url: str) -> str:
    """One line: where it serves, and what it serves now (after the profile's start)."""
    views = built.fleet.instances()
    ready = sum(1 for v in views if v.state == "ready")
    profile = built.profiles.active_name()
    return (
        f"modelyard: serving on {url} (dashboard /, OpenAI API /v1): "
        f"{_count(len(built.catalog.models()), 'model')}, "
        f"{_count(len(views), 'instance')} ({ready} ready)"
        + (f", profile {profile}" if profile else "")
    )


def listen_url(host: str, port: int) -> str:
    """The address a client on this machine uses: a wildcard host is reached on loopback."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _check_free(host: str, port: int) -> None:
    """Fail before anything starts when the port is taken (uvicorn would say so only after
    the fleet and the profile's instances had started). Raises ConfigError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                "another server may be there: choose another port with --port"
            ) from None


class _Stopped(BaseException):
    """SIGINT or SIGTERM arrived outside uvicorn's own handling (before it started, or
    re-raised by it after its graceful shutdown). A BaseException: no ``except Exception``
    on the way out may swallow it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _signals_as_exceptions() -> Iterator[None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stopped(signum)

    previous = {sig: signal.signal(sig, stop) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command("serve")(serve)
