"""The ``command`` engine: any OpenAI-compatible server started from a user's command line.

The command is split like a shell would (``shlex``, no shell runs), then these placeholders
are replaced inside each word: ``${PORT}``, ``${MODEL_PATH}``, ``${MODEL_ID}``,
``${INSTANCE_ID}``. Other ``$`` text is left as it is. The instance's extra arguments are
appended. The stop command, when given, gets the same placeholders and runs instead of SIGTERM.
Both get the fleet's scrubbed environment (``modelyard.fleet.environment``); ``pass_env``
names the withheld variables they get all the same.
Memory is the model's curated ``memory_bytes`` (0 when unknown), held in RAM.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from modelyard.engines.base import LaunchPlan, LaunchSpec, MeasurementKey, MemoryEstimate
from modelyard.errors import EngineError

HOST = "127.0.0.1"
_PLACEHOLDER = re.compile(r"\$\{(PORT|MODEL_PATH|MODEL_ID|INSTANCE_ID)\}")


@dataclass(frozen=True)
class CommandLine:
    """How to run one model: the command, where it answers health checks, how to stop it."""

    command: str
    health_path: str = "/health"
    stop_command: str | None = None
    pass_env: tuple[str, ...] = ()  # withheld variables the command gets all the same


CommandLookup = Callable[[str], CommandLine | None]
"""``model_id -> CommandLine``, or None when the model has no command."""


class CommandEngine:
    """Runs the command line configured for each model (curated entries' ``command``)."""

    name = "command"

    def __init__(self, commands: CommandLookup) -> None:
        self._commands = commands

    def plan(self, spec: LaunchSpec) -> LaunchPlan:
        """Raises EngineError when the model has no command or the command cannot be split."""
        line = self._commands(spec.model.id)
        if line is None or not line.command.strip():
            raise EngineError(
                f"model {spec.model.id} uses the command engine but has no command; "
                "set `command` in its curated entry"
            )
        values = {
            "PORT": str(spec.port),
            "MODEL_PATH": spec.model.path or "",
            "MODEL_ID": spec.model.id,
            "INSTANCE_ID": spec.instance_id,
        }
        argv = (*_expand(line.command, values, spec.model.id), *spec.args.extra_args)
        stop = _expand(line.stop_command, values, spec.model.id) if line.stop_command else None
        health = line.health_path if line.health_path.startswith("/") else f"/{line.health_path}"
        return LaunchPlan(
            argv=argv,
            base_url=f"http://{HOST}:{spec.port}",
            health_path=health,
            stop_argv=stop or None,
            pass_env=line.pass_env,
        )

    def estimate(self, spec: LaunchSpec) -> MemoryEstimate:
        return MemoryEstimate(weights=spec.model.memory_bytes or 0, kv_cache=0, compute=0)

    def parse_memory_log(self, lines: list[str]) -> dict[str, int] | None:
        return None

    def measurement_key(self, spec: LaunchSpec) -> MeasurementKey | None:
        return None

    def parallel_slots(self, spec: LaunchSpec) -> int | None:
        return spec.args.parallel

    def parse_metrics(self, plan: LaunchPlan, body: bytes) -> dict[str, float] | None:
        return None


def _expand(command: str, values: dict[str, str], model_id: str) -> tuple[str, ...]:
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise EngineError(f"the command of model {model_id} cannot be split: {exc}") from None
    if not words:
        raise EngineError(f"the command of model {model_id} is empty")
    return tuple(_PLACEHOLDER.sub(lambda m: values[m.group(1)], word) for word in words)
