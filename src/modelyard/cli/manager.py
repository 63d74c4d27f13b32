"""Finding the running manager (``modelyard serve``) and talking to it over its /api routes.

Where the manager is (``locate``), first match wins:

1. ``--url`` or ``MODELYARD_URL`` (``settings.url``): that manager and no other; when it does
   not answer, a command that needs it fails, and nothing falls back to the local store;
2. the runtime file the server wrote in the data folder (``modelyard.cli.runtime``), when
   its process still runs; a stale one is ignored with a one-line note;
3. ``server.host:port`` of the settings, when something answers there.

Errors come back as the manager's JSON error and become a ModelyardError with its message,
so the CLI prints one line. ``settings.api_key`` (``MODELYARD_API_KEY``) is sent as the admin
key when set.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import typer

from modelyard.cli.context import err_console, state
from modelyard.cli.runtime import Runtime, Stale, look
from modelyard.errors import FleetError, ManagerRunning, ModelyardError
from modelyard.settings import Settings

ANSWER_TIMEOUT_S = 15.0  # for a probe's answer, once the connection is accepted
_CONNECT_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Location:
    """Where the manager should be. ``source``: ``url`` (``--url``/``MODELYARD_URL``),
    ``runtime`` (a live runtime file; ``pid`` is its server's) or ``config``
    (``server.host:port``, a guess). ``note`` is a line to show (a stale runtime file)."""

    url: str
    source: Literal["url", "runtime", "config"]
    pid: int | None = None
    note: str | None = None

    @property
    def certain(self) -> bool:
        """True when a manager was named (not guessed): if it does not answer, nothing may
        fall back to the store (the manager owns it, or the user asked for that one)."""
        return self.source != "config"


def locate(settings: Settings) -> Location:
    """Where the manager is, by the order in the module docstring. Reads the runtime file;
    no network."""
    if settings.url is not None:
        return Location(settings.url, "url")
    found = look(settings.runtime_file)
    if isinstance(found, Runtime):
        return Location(found.url, "runtime", pid=found.pid)
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    note = found.note() if isinstance(found, Stale) else None
    return Location(f"http://{host}:{settings.server.port}", "config", note=note)


class ManagerClient:
    """One manager, at ``location`` (default: ``locate(settings)``)."""

    def __init__(
        self,
        settings: Settings,
        location: Location | None = None,
        answer_timeout_s: float = ANSWER_TIMEOUT_S,
    ) -> None:
        self.location = location or locate(settings)
        self._probe_timeout = httpx.Timeout(answer_timeout_s, connect=_CONNECT_TIMEOUT_S)
        self.url = self.location.url
        key = settings.api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(base_url=self.url, headers=headers, trust_env=False)

    def __enter__(self) -> ManagerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def running(self) -> bool:
        """True when a manager answers at the URL; False when nothing listens there (the
        connection is refused, or not accepted within a second) or what answers is not HTTP.
        Raises FleetError when something accepted the connection but sent no answer within
        ``answer_timeout_s``: a busy manager is still the store's owner, so a command must
        not fall back to writing the store itself (a one-second probe did, under load)."""
        try:
            self._client.get("/api/instances", timeout=self._probe_timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            return False
        except httpx.TimeoutException:
            raise FleetError(
                f"the server at {self.url} accepted the connection but did not answer within "
                f"{self._probe_timeout.read:g}s; try again, or name another with --url"
            ) from None
        except httpx.HTTPError:
            return False
        return True

    def not_running(self) -> FleetError:
        """The error of a command that needs the manager when none answers."""
        where = self.location
        if where.source == "url":
            return FleetError(
                f"no modelyard serve answers at {self.url} (from --url or MODELYARD_URL)"
            )
        if where.source == "runtime":
            return FleetError(
                f"the modelyard serve at {self.url} (pid {where.pid}) does not answer; it may "
                "still be starting: try again in a moment"
            )
        return FleetError(
            f"no modelyard serve is running at {self.url}; start one with `modelyard serve`"
        )

    def call(self, method: str, path: str, *, json: Any = None, timeout: float = 600.0) -> Any:
        """One request; returns the decoded JSON (None for 204). Raises ModelyardError."""
        try:
            response = self._client.request(method, path, json=json, timeout=timeout)
        except httpx.ConnectError:
            raise self.not_running() from None
        except httpx.HTTPError as exc:
            raise FleetError(f"the manager at {self.url} did not answer: {exc}") from None
        if response.status_code >= 400:
            raise _error(response)
        return None if response.status_code == 204 else response.json()

    def stream_lines(self, path: str) -> Iterator[str]:
        """Lines of a streamed text response, until the server ends it or Ctrl-C."""
        try:
            with self._client.stream("GET", path, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                yield from response.iter_lines()
        except httpx.ConnectError:
            raise self.not_running() from None


def connect(ctx: typer.Context) -> ManagerClient:
    """The client of the manager this command should talk to; shows the locating note."""
    client = ManagerClient(state(ctx).settings())
    if client.location.note is not None:
        err_console.print(f"note: {client.location.note}", highlight=False, soft_wrap=True)
    return client


def reachable(ctx: typer.Context) -> ManagerClient | None:
    """The manager's client when one answers; None when none runs (the command may use the
    store itself). Raises the client's ``not_running()`` when a named manager (``--url``, a
    live runtime file) does not answer: the store is not this command's to write then."""
    client = connect(ctx)
    if client.running():
        return client
    client.close()
    if client.location.certain:
        raise client.not_running()
    return None


def offline_only(client: ManagerClient, command: str) -> ManagerRunning:
    """The error of a command that can only work on the store itself (there is no /api for
    it) while the manager at ``client`` runs and owns that store."""
    pid = f" (pid {client.location.pid})" if client.location.pid else ""
    return ManagerRunning(
        f"`modelyard {command}` works only while no manager runs, and one runs at "
        f"{client.url}{pid}: stop it first"
    )


def _error(response: httpx.Response) -> ModelyardError:
    """The manager's error as one line: its own error body, or FastAPI's validation body
    (``{"detail": [{"loc": [...], "msg": ...}]}``), else the status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message: str | None = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = str(body["error"].get("message") or "") or None
    elif isinstance(body, dict) and "detail" in body:
        message = _detail(body["detail"])
    if message is None:
        text = response.text.strip()
        message = text if text and len(text) <= 200 and "\n" not in text else None
    return ModelyardError(message or f"the manager answered HTTP {response.status_code}")


def _detail(detail: Any) -> str | None:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
        msg = str(first.get("msg", "invalid"))
        return f"{where}: {msg}" if where else msg
    return None
