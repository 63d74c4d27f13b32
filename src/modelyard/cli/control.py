"""What the instance commands do, written once: ``InstanceControl`` and its two implementations.

``instance_control(ctx)`` picks one, once per command:

- ``HttpControl`` when a manager (``modelyard serve``) answers where ``manager.locate`` says
  it is: every call goes through its ``/api/instances`` routes, so the one process that owns
  the instances makes the change;
- a one-line FleetError when a manager was named (``--url``, ``MODELYARD_URL``, a live
  runtime file) but does not answer: its store is not the CLI's to write;
- ``LocalControl`` otherwise (the offline mode): create, list, get, update, delete, logs and
  presets work on the store directly, and every instance shows stopped; start, stop, restart
  and following logs need the manager and raise the one-line FleetError saying none runs.

Every method returns plain dicts shaped as the ``/api`` returns them (``InstanceView.to_dict``),
and raises ModelyardError for what the manager or the fleet refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, Protocol

import typer

from modelyard.api.auth import LOCAL
from modelyard.cli.context import actor, services, state
from modelyard.cli.manager import ManagerClient, connect
from modelyard.errors import FleetError
from modelyard.fleet.fleet import Fleet
from modelyard.services import Services

View = dict[str, Any]  # one instance, as GET /api/instances/{id} returns it
Views = list[View]
Presets = list[dict[str, Any]]  # as GET /api/instances/presets returns them
Lines = list[str]  # aliases: inside the classes below, ``list`` is the method


class InstanceControl(Protocol):
    """Instances, wherever they are managed. Each call blocks until done (``start`` until
    the instance is ready or failed)."""

    def create(self, model: str, config: dict[str, Any], count: int) -> Views:
        """``count`` new stopped instances of ``model``. Raises ModelNotFound, ValidationFailed."""
        ...

    def list(self) -> Views: ...

    def get(self, instance_id: str) -> View:
        """Raises InstanceNotFound (over HTTP: a ModelyardError with its message)."""
        ...

    def update(self, instance_id: str, changes: dict[str, Any]) -> View:
        """Change settings; keys left out keep their value."""
        ...

    def delete(self, instance_id: str) -> None:
        """Stop (if running) and forget the instance; its port is freed."""
        ...

    def start(self, instance_id: str) -> View: ...

    def stop(self, instance_id: str) -> View: ...

    def restart(self, instance_id: str) -> View: ...

    def logs(self, instance_id: str, lines: int) -> Lines:
        """The instance's last ``lines`` log lines."""
        ...

    def follow_logs(self, instance_id: str, lines: int) -> Iterator[str]:
        """The last ``lines``, then each new line, until the manager ends the stream."""
        ...

    def presets(self) -> Presets:
        """The system-prompt presets: built-in ones first, then the user's."""
        ...


@contextmanager
def instance_control(ctx: typer.Context) -> Iterator[InstanceControl]:
    """The running manager's control when one answers (one probe), else the local one.
    Raises FleetError when a named manager does not answer (see the module docstring)."""
    client = connect(ctx)
    with client:
        if client.running():
            yield HttpControl(client)
            return
    if client.location.certain:
        raise client.not_running()
    who = actor(state(ctx).settings())
    with LocalControl(lambda: services(ctx), client.not_running, who) as local:
        yield local


class HttpControl:
    """InstanceControl over a running manager's ``/api/instances``."""

    def __init__(self, client: ManagerClient) -> None:
        self._client = client

    def create(self, model: str, config: dict[str, Any], count: int) -> Views:
        body = {"model": model, "count": count, "config": config}
        views: Views = self._client.call("POST", "/api/instances", json=body)
        return views

    def list(self) -> Views:
        views: Views = self._client.call("GET", "/api/instances")
        return views

    def get(self, instance_id: str) -> View:
        return self._view("GET", instance_id)

    def update(self, instance_id: str, changes: dict[str, Any]) -> View:
        return self._view("PATCH", instance_id, json=changes)

    def delete(self, instance_id: str) -> None:
        self._client.call("DELETE", f"/api/instances/{instance_id}")

    def start(self, instance_id: str) -> View:
        return self._view("POST", instance_id, "/start")

    def stop(self, instance_id: str) -> View:
        return self._view("POST", instance_id, "/stop")

    def restart(self, instance_id: str) -> View:
        return self._view("POST", instance_id, "/restart")

    def logs(self, instance_id: str, lines: int) -> Lines:
        tail: Lines = self._client.call("GET", f"/api/instances/{instance_id}/logs?lines={lines}")[
            "lines"
        ]
        return tail

    def follow_logs(self, instance_id: str, lines: int) -> Iterator[str]:
        return self._client.stream_lines(
            f"/api/instances/{instance_id}/logs?follow=1&lines={lines}"
        )

    def presets(self) -> Presets:
        found: Presets = self._client.call("GET", "/api/instances/presets")
        return found

    def _view(self, method: str, instance_id: str, action: str = "", json: Any = None) -> View:
        view: View = self._client.call(method, f"/api/instances/{instance_id}{action}", json=json)
        return view


class LocalControl:
    """InstanceControl over this process's services, for when no manager runs.

    The services are opened on the first call that needs them (start, stop, restart and
    ``follow_logs`` do not: they raise ``unavailable()`` at once), and closed with this
    object. Calls that show instances load the catalog first (``Catalog.load``: a catalog
    never scanned is scanned then), because an instance's memory estimate reads its model.
    """

    def __init__(
        self,
        open_services: Callable[[], AbstractContextManager[Services]],
        unavailable: Callable[[], FleetError],
        actor: str = LOCAL,
    ) -> None:
        self._open_services = open_services
        self._unavailable = unavailable
        self._actor = actor
        self._stack = ExitStack()
        self._built: Services | None = None

    def __enter__(self) -> LocalControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def create(self, model: str, config: dict[str, Any], count: int) -> Views:
        fleet = self._fleet(showing=True)
        views = asyncio.run(fleet.create(model, config, count, actor=self._actor))
        return [v.to_dict() for v in views]

    def list(self) -> Views:
        return [v.to_dict() for v in self._fleet(showing=True).instances()]

    def get(self, instance_id: str) -> View:
        return self._fleet(showing=True).get(instance_id).to_dict()

    def update(self, instance_id: str, changes: dict[str, Any]) -> View:
        fleet = self._fleet(showing=True)
        return asyncio.run(fleet.update(instance_id, changes, actor=self._actor)).to_dict()

    def delete(self, instance_id: str) -> None:
        asyncio.run(self._fleet().delete(instance_id, actor=self._actor))

    def start(self, instance_id: str) -> View:
        raise self._unavailable()

    def stop(self, instance_id: str) -> View:
        raise self._unavailable()

    def restart(self, instance_id: str) -> View:
        raise self._unavailable()

    def logs(self, instance_id: str, lines: int) -> Lines:
        return self._fleet().logs(instance_id, lines)

    def follow_logs(self, instance_id: str, lines: int) -> Iterator[str]:
        raise self._unavailable()

    def presets(self) -> Presets:
        return [preset.model_dump() for preset in self._services().presets.all()]

    def _fleet(self, *, showing: bool = False) -> Fleet:
        built = self._services()
        if showing:
            built.catalog.load()
        return built.fleet

    def _services(self) -> Services:
        if self._built is None:
            self._built = self._stack.enter_context(self._open_services())
        return self._built
