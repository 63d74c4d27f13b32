"""System-prompt presets: the built-in ``concise``, ``researcher`` and ``coder``, plus the
user's own, kept in the store (table ``presets``).

Built-in presets cannot be replaced or removed; a user preset may not take a built-in name.
Every change lands with its audit entry in one transaction.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelyard.errors import Conflict, PresetNotFound
from modelyard.events import EventBus
from modelyard.store import Store
from modelyard.store.presets import delete_preset, insert_preset, preset_row, preset_rows

PRESET_NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class PresetBody(BaseModel):
    """What a user gives to add a preset."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(pattern=PRESET_NAME)
    title: str = Field(min_length=1, max_length=100)
    prompt: str = Field(min_length=1, max_length=16_384)
    description: str | None = Field(None, max_length=500)


class Preset(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    title: str
    prompt: str
    description: str | None = None
    source: Literal["builtin", "user"]


BUILTIN: tuple[Preset, ...] = (
    Preset(
        name="concise",
        title="Concise Assistant",
        prompt="You are a concise assistant. Keep responses brief and to the point.",
        description="For quick, short answers",
        source="builtin",
    ),
    Preset(
        name="researcher",
        title="Research Assistant",
        prompt=(
            "You are a thorough research assistant. Provide detailed, well-sourced answers "
            "with citations when possible."
        ),
        description="For in-depth research queries",
        source="builtin",
    ),
    Preset(
        name="coder",
        title="Code Assistant",
        prompt=(
            "You are an expert programmer. Write clean, well-documented code. "
            "Explain your reasoning."
        ),
        description="For coding tasks",
        source="builtin",
    ),
)


class Presets:
    """The presets over the store. Stateless beyond the store; cheap to build. Each change
    is published as ``preset.changed`` on ``events`` when one is given."""

    def __init__(self, store: Store, events: EventBus | None = None) -> None:
        self._store = store
        self._events = events

    def _publish(self, name: str, action: str) -> None:
        if self._events is not None:
            self._events.publish("preset.changed", {"name": name, "action": action})

    def all(self) -> list[Preset]:
        """Built-in presets first, then the user's by name."""
        rows = preset_rows(self._store)
        return [*BUILTIN, *(_from_row(name, data) for name, data in rows.items())]

    def names(self) -> set[str]:
        return {p.name for p in self.all()}

    def get(self, name: str) -> Preset:
        """One preset. Raises PresetNotFound."""
        for preset in self.all():
            if preset.name == name:
                return preset
        raise PresetNotFound(f"no preset '{name}'", param="name")

    def add(self, body: PresetBody, *, actor: str) -> Preset:
        """Add a user preset. Raises Conflict if the name is taken (built-in or user)."""
        if body.name in {p.name for p in BUILTIN}:
            raise Conflict(f"'{body.name}' is a built-in preset", param="name")
        data = body.model_dump(exclude={"name"})
        with self._store.transaction() as conn:
            if preset_row(conn, body.name) is not None:
                raise Conflict(f"preset '{body.name}' already exists", param="name")
            insert_preset(conn, body.name, data)
            self._store.audit(conn, actor=actor, action="preset.add", target=body.name, new=data)
        self._publish(body.name, "add")
        return Preset(**data, name=body.name, source="user")

    def remove(self, name: str, *, actor: str) -> Preset:
        """Remove a user preset. Raises Conflict for a built-in one, PresetNotFound."""
        if name in {p.name for p in BUILTIN}:
            raise Conflict(f"'{name}' is a built-in preset and cannot be removed", param="name")
        with self._store.transaction() as conn:
            old = preset_row(conn, name)
            if old is None:
                raise PresetNotFound(f"no preset '{name}'", param="name")
            delete_preset(conn, name)
            self._store.audit(conn, actor=actor, action="preset.remove", target=name, old=old)
        self._publish(name, "remove")
        return _from_row(name, old)


def _from_row(name: str, data: dict[str, Any]) -> Preset:
    return Preset(**data, name=name, source="user")
