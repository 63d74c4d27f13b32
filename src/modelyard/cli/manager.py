"""Talking to the running manager (``modelyard serve``) over its /api routes.

Errors come back as the manager's JSON error and become a ModelyardError with its message,
so the CLI prints one line. ``settings.api_key`` (``MODELYARD_API_KEY``) is sent as the admin
key when set.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from modelyard.errors import FleetError, ModelyardError
from modelyard.settings import Settings

_PROBE_TIMEOUT_S = 1.0


class ManagerClient:
    """One manager at ``settings.server`` host:port (a wildcard host is reached on loopback)."""

    def __init__(self, settings: Settings) -> None:
        host = settings.server.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        self.url = f"http://{host}:{settings.server.port}"
        key = settings.api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(base_url=self.url, headers=headers, trust_env=False)

    def __enter__(self) -> ManagerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def running(self) -> bool:
        """True when a manager answers at the URL (within one second)."""
        try:
            self._client.get("/api/instances", timeout=_PROBE_TIMEOUT_S)
        except httpx.HTTPError:
            return False
        return True

    def not_running(self) -> FleetError:
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


def _error(response: httpx.Response) -> ModelyardError:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text.strip() or f"HTTP {response.status_code}"
    return ModelyardError(str(message))
