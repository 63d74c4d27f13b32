"""Settings: one YAML file plus ``MODELYARD_*`` environment variables, read once, frozen.

Precedence, highest first: explicit overrides (CLI flags), environment variables
(``MODELYARD_DATA_DIR``, nested keys with ``__``: ``MODELYARD_FLEET__START_TIMEOUT_S=60``),
the YAML file, the defaults below.

The YAML file is ``--config``, else ``MODELYARD_CONFIG``, else
``~/.config/modelyard/modelyard.yaml`` when it exists.

This module is the only one that reads the environment. Besides ``MODELYARD_*`` it reads
the other tools' model folders (``HF_HUB_CACHE``, ``HF_HOME``, ``OLLAMA_MODELS``), below
every modelyard setting, into ``discovery``; and ``MODELYARD_DEBUG`` through
``debug_enabled()``, apart from the settings, because the CLI needs it when they fail.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from modelyard.errors import ConfigError

Tier = Literal["fast", "balanced", "powerful"]
EngineName = Literal["llamacpp", "vllm", "ollama", "remote", "command"]


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TierThresholds(Section):
    """Parameter-count thresholds, in billions, for the automatic tier."""

    fast_max: float = Field(7.0, gt=0)
    powerful_min: float = Field(14.0, gt=0)


class DiscoverySettings(Section):
    hf: bool = True
    hf_cache: Path | None = None
    ollama: bool = True
    ollama_models: Path | None = None
    folders: list[Path] = Field(default_factory=list)
    default_model: bool = True
    max_header_bytes: int = Field(4 * 1024 * 1024, ge=64 * 1024)


class CuratedModel(Section):
    """A model that discovery cannot find: a vLLM folder, a remote API, a command."""

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
    engine: EngineName
    name: str | None = None
    path: Path | None = None
    url: str | None = None
    api_key_env: str | None = None
    command: str | None = None
    health_path: str = "/health"
    stop_command: str | None = None
    family: str | None = None
    architecture: str | None = None
    parameters_b: float | None = Field(None, ge=0)
    quantization: str | None = None
    context_length: int | None = Field(None, gt=0)
    memory_bytes: int | None = Field(None, ge=0)
    tier: Tier | None = None
    thinking: bool = False
    coder: bool = False
    instruct: bool = True
    vision: bool = False
    embedding: bool = False
    tools: bool = False
    enabled: bool = True
    roles: dict[str, int] = Field(default_factory=dict)


class LlamaCppSettings(Section):
    binary: str | None = None
    default_ctx: int = Field(4096, gt=0)
    default_gpu_layers: int = Field(999, ge=-1)
    default_parallel: int = Field(1, ge=1)
    threads: int | None = Field(None, ge=1)
    cache_type: str = "f16"
    # llama-server logs its buffer sizes (read to correct memory estimates) at verbosity 4;
    # None passes no verbosity flag.
    log_verbosity: int | None = Field(4, ge=0)


class FleetSettings(Section):
    port_range: tuple[int, int] = (8200, 8299)
    start_timeout_s: float = Field(120.0, gt=0)
    stop_timeout_s: float = Field(10.0, gt=0)
    health_interval_s: float = Field(0.02, gt=0, le=1.0)
    wedge_check_interval_s: float = Field(2.0, gt=0)
    wedge_failures: int = Field(3, ge=1)
    restart_backoff_s: float = Field(0.5, ge=0)
    restart_backoff_max_s: float = Field(30.0, ge=0)
    restart_limit: int = Field(5, ge=0)
    restart_window_s: float = Field(300.0, gt=0)
    log_max_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    log_backups: int = Field(3, ge=0)
    log_tail_lines: int = Field(200, ge=1)

    @field_validator("port_range")
    @classmethod
    def _ordered(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not (1 <= low <= high <= 65535):
            raise ValueError("expected [low, high] with 1 <= low <= high <= 65535")
        return value


class GpuMemory(Section):
    name: str = "gpu"
    total_bytes: int = Field(ge=0)


class MemorySettings(Section):
    """Memory inventory. Unset values are read from the machine (psutil, NVML)."""

    ram_bytes: int | None = Field(None, ge=0)
    gpus: list[GpuMemory] | None = None
    reserve_bytes: int = Field(512 * 1024 * 1024, ge=0)


class FiguresSettings(Section):
    """Per-request figures: in-memory reservoirs, the store flush and the JSONL request log."""

    flush_interval_s: float = Field(1.0, gt=0)
    reservoir: int = Field(1000, ge=1)
    buffer_max: int = Field(100_000, ge=1)
    request_log: bool = True
    request_log_max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    request_log_backups: int = Field(3, ge=0)


class ApiKey(Section):
    """One gateway API key. ``key`` is never shown (left out of repr)."""

    name: str = Field(min_length=1, max_length=64)
    key: str = Field(min_length=8, repr=False)


class GatewayTimeouts(Section):
    """Backend timeouts, seconds. ``first_byte_s`` covers prompt processing on a slow CPU."""

    connect_s: float = Field(5.0, gt=0)
    first_byte_s: float = Field(300.0, gt=0)
    idle_s: float = Field(120.0, gt=0)


class GatewaySettings(Section):
    """The /v1 gateway: name resolution, balancing, fallbacks, health, limits and keys.

    ``default_model`` is what ``auto`` means (any name the gateway resolves, e.g. a model id
    or ``tier:balanced``); ``tier_defaults`` pins the model a tier resolves to; ``aliases``
    maps extra names to names; ``fallbacks`` maps a model id to the names tried after it.

    ``body_timeout_s`` bounds the time to receive a request's whole body (408 past it).
    ``default_max_tokens`` is sent as ``max_tokens`` on a chat or completion request that
    gives no ``max_tokens`` (nor ``max_completion_tokens``): without it llama-server
    generates until the context is full. ``default_max_tokens_by_model`` sets it per model
    id (``null``: no default for that model); None: no default at all.
    """

    strategy: Literal["round_robin", "least_loaded", "random"] = "least_loaded"
    default_model: str | None = None
    tier_defaults: dict[Tier, str] = Field(default_factory=dict)
    aliases: dict[str, str] = Field(default_factory=dict)
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    api_keys: list[ApiKey] = Field(default_factory=list)
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    body_timeout_s: float = Field(60.0, gt=0)
    default_max_tokens: int | None = Field(4096, ge=1)
    default_max_tokens_by_model: dict[str, Annotated[int, Field(ge=1)] | None] = Field(
        default_factory=dict
    )
    queue_size: int = Field(256, ge=0)
    retry_after_s: int = Field(1, ge=1)
    max_attempts: int = Field(4, ge=1)
    timeouts: GatewayTimeouts = GatewayTimeouts()
    failures_to_cooldown: int = Field(3, ge=1)
    recent_window_s: float = Field(60.0, gt=0)
    recent_failures: int = Field(5, ge=1)
    cooldown_base_s: float = Field(1.0, gt=0)
    cooldown_max_s: float = Field(60.0, gt=0)
    keepalive_s: float = Field(5.0, gt=0)
    catalog_refresh_s: float = Field(5.0, gt=0)


class ApiSettings(Section):
    """The /api management routes. ``admin_keys`` are separate from ``gateway.api_keys``
    (inference keys): when any key is configured, /api needs an admin key."""

    admin_keys: list[ApiKey] = Field(default_factory=list)
    events_keepalive_s: float = Field(15.0, gt=0)


class DeploymentSettings(Section):
    """Overrides of the deployment suggested from the hardware (None: use the suggestion)."""

    memory_budget_bytes: int | None = Field(None, ge=0)
    max_models_loaded: int | None = Field(None, ge=1)


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8100, ge=1, le=65535)


class Settings(BaseSettings):
    """Everything modelyard reads at start. Frozen: pass it down, never mutate it."""

    model_config = SettingsConfigDict(
        env_prefix="MODELYARD_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    data_dir: Path = Field(default_factory=lambda: Path.home() / ".local/share/modelyard")
    config_file: Path | None = None
    profiles_dir: Path | None = None
    tiers: TierThresholds = TierThresholds()
    discovery: DiscoverySettings = DiscoverySettings()
    curated: list[CuratedModel] = Field(default_factory=list)
    llamacpp: LlamaCppSettings = LlamaCppSettings()
    fleet: FleetSettings = FleetSettings()
    memory: MemorySettings = MemorySettings()
    server: ServerSettings = ServerSettings()
    gateway: GatewaySettings = GatewaySettings()
    figures: FiguresSettings = FiguresSettings()
    profile: str | None = None
    api: ApiSettings = ApiSettings()
    # The admin key the CLI sends to a running manager (MODELYARD_API_KEY); never shown.
    api_key: str | None = Field(None, repr=False)
    deployment: DeploymentSettings = DeploymentSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives through init_settings (see load_settings), below the env.
        return env_settings, init_settings

    @property
    def db_path(self) -> Path:
        return self.data_dir / "modelyard.db"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"


DEFAULT_CONFIG = Path("~/.config/modelyard/modelyard.yaml")


def config_path(explicit: Path | None = None) -> Path | None:
    """The YAML file to read: the explicit one, ``MODELYARD_CONFIG``, or the default if present."""
    if explicit is not None:
        return explicit
    env = os.environ.get("MODELYARD_CONFIG")
    if env:
        return Path(env)
    default = DEFAULT_CONFIG.expanduser()
    return default if default.exists() else None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping of keys at the top level")
    return data


def describe_validation_error(exc: ValidationError, origin: str) -> str:
    """One line naming the first bad key and what was expected."""
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    count = len(exc.errors())
    more = f" (and {count - 1} more)" if count > 1 else ""
    return f"{origin}: key '{key}': {first['msg']}{more}"


def tool_model_folders(environ: Mapping[str, str]) -> dict[str, Path]:
    """The ``discovery`` folders named by other tools' variables: ``hf_cache`` from
    ``HF_HUB_CACHE``, else ``HF_HOME``/hub; ``ollama_models`` from ``OLLAMA_MODELS``.
    Unset or empty variables name nothing; ``~`` is expanded."""

    def path(name: str) -> Path | None:
        value = environ.get(name)
        return Path(value).expanduser() if value else None

    found: dict[str, Path] = {}
    hub_cache, hf_home, ollama = path("HF_HUB_CACHE"), path("HF_HOME"), path("OLLAMA_MODELS")
    if hub_cache is not None:
        found["hf_cache"] = hub_cache
    elif hf_home is not None:
        found["hf_cache"] = hf_home / "hub"
    if ollama is not None:
        found["ollama_models"] = ollama
    return found


def debug_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """``MODELYARD_DEBUG=1``: the CLI lets a traceback through instead of one line. Read
    apart from ``Settings`` so that it also works when they fail to load."""
    return environ.get("MODELYARD_DEBUG") == "1"


def _with_tool_folders(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Fill the discovery folders the file and the overrides leave unset from the tools'
    variables. ``MODELYARD_DISCOVERY__*`` still wins: the environment source is above these
    values. A ``discovery`` that is not a mapping is left for validation to report."""
    discovery = data.get("discovery")
    if discovery is None:
        discovery = {}
    if not isinstance(discovery, Mapping):
        return
    unset = {k: v for k, v in tool_model_folders(environ).items() if discovery.get(k) is None}
    if unset:
        data["discovery"] = {**discovery, **unset}


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML file and the environment once. Raises ConfigError naming the bad key."""
    path = config_path(config)
    data: dict[str, Any] = _read_yaml(path.expanduser()) if path else {}
    if path is not None:
        data["config_file"] = path
    data.update({k: v for k, v in overrides.items() if v is not None})
    _with_tool_folders(data, os.environ)
    origin = f"config file {path}" if path else "configuration"
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, origin)) from None
    return settings.model_copy(update={"data_dir": settings.data_dir.expanduser()})
