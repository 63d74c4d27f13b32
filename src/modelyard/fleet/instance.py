"""An instance's configuration (what the user set) and its view (what callers see).

An instance is one configured server of one model, id ``model_id:NN`` (NN 01-99).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from modelyard.engines.base import EngineArgs
from modelyard.errors import ValidationFailed

InstanceState = Literal["stopped", "starting", "ready", "error", "stopping", "sleeping"]
Desired = Literal["running", "stopped"]

MAX_NUMBER = 99
MAX_DISPLAY_NAME = 64
MAX_SYSTEM_PROMPT = 4096
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class InstanceConfig:
    """What the user sets for one instance. Build through ``clean_config`` to validate."""

    display_name: str | None = None
    system_prompt: str | None = None
    web_search: bool = False
    on_demand: bool = False
    idle_ttl: float | None = None
    pinned: bool = False
    autostart: bool = False
    engine_args: EngineArgs = field(default_factory=EngineArgs)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["engine_args"]["extra_args"] = list(self.engine_args.extra_args)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstanceConfig:
        """Inverse of ``to_dict``; unknown keys are ignored. Raises ValidationFailed."""
        return clean_config(data)


@dataclass(frozen=True)
class InstanceView:
    """A frozen snapshot of one instance for the gateway, the API and the CLI.

    ``started_at`` is wall-clock seconds; ``last_used`` is ``time.monotonic()`` seconds
    (None before the first request); ``memory_measured`` the RSS of the process tree.
    """

    id: str
    model_id: str
    number: int
    state: InstanceState
    error: str | None
    port: int
    base_url: str
    pid: int | None
    started_at: float | None
    uptime_s: float | None
    last_used: float | None
    in_flight: int
    config: InstanceConfig
    memory_estimate: int
    memory_measured: int | None
    restarts: int
    desired: Desired = "stopped"
    memory_device: int | None = None  # the GPU index the estimate is on; None: system RAM
    log_tail: tuple[str, ...] = field(default=())
    version: str = ""  # of the settings: the ETag an update may name in If-Match
    parallel_slots: int | None = None  # requests its server takes at once; None: no limit known
    # Engines beyond llama.cpp (docs/engines.md): the model name requests carry upstream
    # (None: forwarded as sent), the variable holding the server's API key (the name only,
    # read per request), the figures scraped from its metrics (vLLM: running, waiting,
    # kv_cache_usage; Ollama: size, size_vram) and the sleep level while sleeping
    served_name: str | None = None
    api_key_env: str | None = None
    load: dict[str, float] | None = None
    sleep_level: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["config"] = self.config.to_dict()
        data["log_tail"] = list(self.log_tail)
        return data


def instance_id(model_id: str, number: int) -> str:
    return f"{model_id}:{number:02d}"


def clean_display_name(value: str | None) -> str | None:
    """Tags stripped, whitespace trimmed; empty becomes None. Raises ValidationFailed > 64."""
    if value is None:
        return None
    text = " ".join(_TAG.sub("", value).split())
    if len(text) > MAX_DISPLAY_NAME:
        raise ValidationFailed(
            f"display name is {len(text)} characters; at most {MAX_DISPLAY_NAME}",
            param="display_name",
        )
    return text or None


def clean_system_prompt(value: str | None) -> str | None:
    """Control characters (NUL included) removed, newlines and tabs kept; CRLF becomes LF.
    Raises ValidationFailed above 4096 characters. Empty becomes None."""
    if value is None:
        return None
    text = value.replace("\r\n", "\n")
    text = "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs")
    )
    if len(text) > MAX_SYSTEM_PROMPT:
        raise ValidationFailed(
            f"system prompt is {len(text)} characters; at most {MAX_SYSTEM_PROMPT}",
            param="system_prompt",
        )
    return text if text.strip() else None


def _engine_args(value: Any) -> EngineArgs:
    if isinstance(value, EngineArgs):
        return value
    if value is None:
        return EngineArgs()
    if not isinstance(value, dict):
        raise ValidationFailed("engine_args must be a mapping", param="engine_args")
    known = {f.name for f in fields(EngineArgs)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValidationFailed(f"unknown engine argument {unknown[0]!r}", param="engine_args")
    data = dict(value)
    for name in ("ctx", "gpu_layers", "parallel", "threads"):
        item = data.get(name)
        if item is not None and (not isinstance(item, int) or isinstance(item, bool)):
            raise ValidationFailed(f"engine argument {name} must be an integer", param=name)
        if item is not None and name != "gpu_layers" and item < 1:
            raise ValidationFailed(f"engine argument {name} must be at least 1", param=name)
    extra = data.get("extra_args", ())
    if isinstance(extra, str) or not all(isinstance(a, str) for a in extra):
        raise ValidationFailed("extra_args must be a list of strings", param="extra_args")
    data["extra_args"] = tuple(extra)
    return EngineArgs(**data)


def clean_config(data: dict[str, Any], base: InstanceConfig | None = None) -> InstanceConfig:
    """``base`` (default: the defaults) with ``data``'s keys applied and validated.

    Raises ValidationFailed naming the field. Unknown keys are refused.
    """
    config = base or InstanceConfig()
    known = {f.name for f in fields(InstanceConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValidationFailed(f"unknown instance setting {unknown[0]!r}", param=unknown[0])
    changes: dict[str, Any] = {}
    for name, value in data.items():
        if name == "display_name":
            changes[name] = clean_display_name(_optional_str(name, value))
        elif name == "system_prompt":
            changes[name] = clean_system_prompt(_optional_str(name, value))
        elif name in ("web_search", "on_demand", "pinned", "autostart"):
            if not isinstance(value, bool):
                raise ValidationFailed(f"{name} must be true or false", param=name)
            changes[name] = value
        elif name == "idle_ttl":
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
            ):
                raise ValidationFailed("idle_ttl must be a positive number of seconds", param=name)
            changes[name] = None if value is None else float(value)
        elif name == "engine_args":
            changes[name] = _engine_args(value)
    return replace(config, **changes)


def _optional_str(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValidationFailed(f"{name} must be text", param=name)
    return value
