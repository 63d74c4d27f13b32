"""Engines by name, built once by the composition root (no global registry)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from modelyard.engines.base import Engine
from modelyard.engines.command import CommandLine, CommandLookup
from modelyard.errors import EngineError
from modelyard.settings import CuratedModel


class EngineRegistry:
    """Maps an engine name (``llamacpp``, ``command``...) to the engine object."""

    def __init__(self, engines: Mapping[str, Engine]) -> None:
        self._engines = dict(engines)

    def get(self, name: str) -> Engine:
        """Raises EngineError naming the available engines when ``name`` is not one of them."""
        try:
            return self._engines[name]
        except KeyError:
            known = ", ".join(sorted(self._engines)) or "none"
            raise EngineError(f"engine {name!r} is not available (available: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._engines)


def curated_commands(curated: Callable[[], Iterable[CuratedModel]]) -> CommandLookup:
    """A CommandLookup over curated entries (read on each call, so edits are seen)."""

    def lookup(model_id: str) -> CommandLine | None:
        for entry in curated():
            if entry.id == model_id and entry.command:
                return CommandLine(
                    entry.command, entry.health_path, entry.stop_command, tuple(entry.pass_env)
                )
        return None

    return lookup
