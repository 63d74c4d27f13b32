"""Settings: one YAML file plus ``MODELYARD_*`` environment variables, read once, frozen.

Precedence, highest first: explicit overrides (CLI flags), environment variables
(``MODELYARD_DATA_DIR``, nested keys with ``__``: ``MODELYARD_FLEET__START_TIMEOUT_S=60``),
the YAML file, the defaults below.

The YAML file is ``--config``, else ``MODELYARD_CONFIG``, else
``~/.config/modelyard/modelyard.yaml`` when it exists. The CLI's global flags ``--data-dir``
and ``--url`` are applied over everything by ``with_flags``.

This module is the only one that reads the environment. Besides ``MODELYARD_*`` it reads
the other tools' model folders (``HF_HUB_CACHE``, ``HF_HOME``, ``OLLAMA_MODELS``), below
every modelyard setting, into ``discovery``; and ``MODELYARD_DEBUG`` through
``debug_enabled()``, apart from the settings, because the CLI needs it when they fail.
"""

from __future__ import annotations

import json
import os
import re
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from modelyard.errors import ConfigError

Tier = Literal["fast", "balanced", "powerful"]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=256)]
EngineName = Literal["llamacpp", "vllm", "ollama", "remote", "command"]
# What a browser sends as ``Origin``: scheme, host, optional port; never a path.
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s?#]+", re.IGNORECASE)
# The named deployment profiles (profiles/deployment.py PROFILES holds their figures).
DeploymentProfileName = Literal["gpu-16gb", "gpu-24gb", "gpu-2x16gb", "gpu-96gb", "cpu"]


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
    # The model name the server knows, when it is not the entry's id: Ollama's ``name:tag``
    # (engine ollama), a remote API's model id (engine remote)
    served_name: str | None = None
    command: str | None = None
    health_path: str = "/health"
    stop_command: str | None = None
    # Variables of modelyard's environment the command gets although they are withheld by
    # default (MODELYARD_*, and names that look secret such as HF_TOKEN)
    pass_env: list[EnvName] = Field(default_factory=list)
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


class VllmSettings(Section):
    """The vLLM engine (``docs/engines.md``). ``binary`` is split like a shell would."""

    binary: str = "vllm"
    default_ctx: int = Field(4096, gt=0)
    sleep_mode: bool = True  # --enable-sleep-mode: an idle unload sleeps instead of stopping
    overhead_bytes: int = Field(2 * 1024**3, ge=0)  # CUDA context, graphs, activations
    device: int = Field(0, ge=0)  # the GPU its instances are budgeted on


class OllamaSettings(Section):
    """The Ollama engine: the running Ollama server (``OLLAMA_HOST``, else 127.0.0.1:11434)."""

    host: str = Field(default_factory=lambda: ollama_host(os.environ))


class RemoteSettings(Section):
    """The remote engine. An external URL (not loopback, not a private address) is refused
    unless ``allow_external`` is true."""

    allow_external: bool = False


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
    # Serve /v1 without keys on a non-loopback address: said explicitly, never by default
    public_inference: bool = False
    # Browser pages allowed to call /v1 from another origin ("*": any). Empty: no CORS headers.
    cors_origins: tuple[str, ...] = ()

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                hint = origin.rstrip("/") if _ORIGIN.fullmatch(origin.rstrip("/")) else None
                fix = f" (did you mean {hint!r}?)" if hint else ""
                raise ValueError(
                    f"{origin!r} is not an origin: expected scheme://host[:port] with no path, "
                    f"or '*'{fix}"
                )
        return tuple(origin.lower() for origin in value)  # browsers send them lower-case


class ApiSettings(Section):
    """The /api management routes. ``admin_keys`` are separate from ``gateway.api_keys``
    (inference keys): when any key is configured, /api needs an admin key. With
    ``metrics_keys``, ``GET /metrics`` needs one of them (or an admin key)."""

    admin_keys: list[ApiKey] = Field(default_factory=list)
    metrics_keys: list[ApiKey] = Field(default_factory=list)
    events_keepalive_s: float = Field(15.0, gt=0)


class DeploymentSettings(Section):
    """Overrides of the deployment suggested from the hardware (None: use the suggestion).

    ``profile`` names a deployment profile instead of the one picked from the GPUs;
    ``memory_budget_bytes`` is the whole budget, shared equally by the GPUs (or RAM). Both
    limits are enforced when an instance starts."""

    profile: DeploymentProfileName | None = None
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
    # Where scripts/setup.sh assembles the bundled models once (MODELYARD_BUNDLE_DIR); each
    # data folder gets hard links to them.
    bundle_dir: Path = Field(default_factory=lambda: default_bundle_dir(os.environ))
    config_file: Path | None = None
    profiles_dir: Path | None = None
    tiers: TierThresholds = TierThresholds()
    discovery: DiscoverySettings = DiscoverySettings()
    curated: list[CuratedModel] = Field(default_factory=list)
    llamacpp: LlamaCppSettings = LlamaCppSettings()
    vllm: VllmSettings = VllmSettings()
    ollama: OllamaSettings = Field(default_factory=OllamaSettings)
    remote: RemoteSettings = RemoteSettings()
    fleet: FleetSettings = FleetSettings()
    memory: MemorySettings = MemorySettings()
    server: ServerSettings = ServerSettings()
    gateway: GatewaySettings = GatewaySettings()
    figures: FiguresSettings = FiguresSettings()
    profile: str | None = None
    api: ApiSettings = ApiSettings()
    # The admin key the CLI sends to a running manager (MODELYARD_API_KEY); never shown.
    api_key: str | None = Field(None, repr=False)
    # The manager the CLI talks to (MODELYARD_URL, --url); None: the one the runtime file in
    # data_dir names, else server.host:port.
    url: str | None = None
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

    @property
    def runtime_file(self) -> Path:
        """Where a running ``modelyard serve`` says where it listens (``cli/runtime.py``)."""
        return self.data_dir / "serve.json"

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return check_url(value)


def check_url(value: str | None) -> str | None:
    """A manager's address without its trailing ``/``; empty is None. Raises ValueError."""
    if value is None or not value.strip():
        return None
    text = value.strip().rstrip("/")
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest:
        raise ValueError("expected an http:// or https:// address, e.g. http://127.0.0.1:8100")
    return text


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
    except UnicodeDecodeError as exc:  # a binary file, or one saved in another encoding
        raise ConfigError(
            f"config file {path} is not text: byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start:,} is not UTF-8 (expected a YAML file in UTF-8)"
        ) from None
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


def ollama_host(environ: Mapping[str, str]) -> str:
    """Ollama's base URL from ``OLLAMA_HOST`` as Ollama reads it (``host[:port]`` or a URL;
    ``0.0.0.0`` listens everywhere, so it is reached on loopback); 127.0.0.1:11434 by default."""
    value = (environ.get("OLLAMA_HOST") or "").strip().rstrip("/")
    scheme, default_port = "http", "11434"
    if "://" in value:  # a scheme without a port means its usual port (envconfig.Host)
        scheme, value = value.split("://", 1)
        default_port = {"http": "80", "https": "443"}.get(scheme, default_port)
    host, _, port = value.split("/", 1)[0].partition(":")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    return f"{scheme}://{host}:{port or default_port}"


def environment_secret(name: str) -> str | None:
    """The value of environment variable ``name`` now (a remote's API key): read when it is
    sent, never kept in settings, the store, logs or answers. None when unset or empty."""
    return os.environ.get(name) or None


def default_bundle_dir(environ: Mapping[str, str]) -> Path:
    """``MODELYARD_BUNDLE_DIR``, else ``MODELYARD_BUILD_CACHE/models`` (the set-up scripts'
    cache), else ``~/.cache/modelyard/models``."""
    explicit = environ.get("MODELYARD_BUNDLE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    cache = environ.get("MODELYARD_BUILD_CACHE")
    return (Path(cache).expanduser() if cache else Path.home() / ".cache/modelyard") / "models"


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
    """Read the YAML file and the environment once.

    Raises ConfigError naming the bad key and where its value came from: the environment
    variable that set it (``MODELYARD_SERVER__PORT``), else the config file, else
    ``configuration`` (the overrides or the defaults).
    """
    path = config_path(config)
    from_file: dict[str, Any] = _read_yaml(path.expanduser()) if path else {}
    data = dict(from_file)
    if path is not None:
        data["config_file"] = path
    data.update({k: v for k, v in overrides.items() if v is not None})
    _with_tool_folders(data, os.environ)
    try:
        settings = Settings(**data)
    except SettingsError as exc:  # a variable for a list or a section that is not JSON
        raise ConfigError(_describe_environment_error(exc, os.environ)) from None
    except ValidationError as exc:
        loc = exc.errors()[0]["loc"]
        variable = _variable_for(loc, os.environ)
        if variable is not None:
            origin = f"environment variable {variable}"
        elif path is not None and _holds(from_file, loc):
            origin = f"config file {path}"
        else:
            origin = "configuration"
        raise ConfigError(describe_validation_error(exc, origin)) from None
    return settings.model_copy(
        update={
            "data_dir": settings.data_dir.expanduser(),
            "bundle_dir": settings.bundle_dir.expanduser(),
        }
    )


# -- which environment variable a value came from ---------------------------------------------

_PREFIX = "MODELYARD_"
_DELIMITER = "__"


def _variable_for(loc: Sequence[int | str], environ: Mapping[str, str]) -> str | None:
    """The ``MODELYARD_*`` variable that set the value at ``loc`` (a validation error's
    location), or None when no variable did.

    The deepest variable wins: ``MODELYARD_SERVER__PORT`` for ``server.port``, else a
    ``MODELYARD_SERVER`` whose JSON holds ``port``. Names match without regard to case, as
    the settings read them. The environment is above the file, so a variable that holds the
    value is where it came from.
    """
    by_name = {name.upper(): name for name in environ}
    for depth in range(len(loc), 0, -1):
        wanted = _PREFIX + _DELIMITER.join(str(part) for part in loc[:depth]).upper()
        name = by_name.get(wanted)
        if name is None:
            continue
        if depth == len(loc):
            return name
        try:
            value = json.loads(environ[name])
        except ValueError:
            continue
        if _holds(value, loc[depth:]):
            return name
    return None


def _holds(data: Any, loc: Sequence[int | str]) -> bool:
    """Whether ``data`` (parsed YAML or JSON) has a value at ``loc``."""
    for part in loc:
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_list or (isinstance(data, Mapping) and part in data)):
            return False
        data = data[part]
    return True


_FIELD_IN_ERROR = re.compile(r'field "([^"]+)"')


def _describe_environment_error(exc: SettingsError, environ: Mapping[str, str]) -> str:
    """One line for a variable the settings could not parse: those that set a list or a
    section take JSON (``MODELYARD_DISCOVERY__FOLDERS='["/models"]'``)."""
    found = _FIELD_IN_ERROR.search(str(exc))
    field = found.group(1) if found else ""
    culprits = [
        name
        for name, value in sorted(environ.items())
        if name.upper().startswith(_PREFIX + field.upper())
        and _takes_json(name[len(_PREFIX) :].lower().split(_DELIMITER))
        and not _is_json(value)
    ]
    expected = "expected JSON, as for every list or section (e.g. '[\"/models\"]')"
    if culprits:
        return f"environment variable {culprits[0]}: not valid JSON; {expected}"
    return f"environment variables {_PREFIX}{field.upper()}*: {exc}; {expected}"


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _takes_json(parts: Sequence[str]) -> bool:
    """Whether the setting at ``parts`` (``["discovery", "folders"]``) is a list, a mapping
    or a section: the kinds the settings read from a variable as JSON."""
    model: type[BaseModel] = Settings
    annotation: Any = None
    for index, part in enumerate(parts):
        info = model.model_fields.get(part)
        if info is None:
            return False
        annotation = _without_none(info.annotation)
        if index < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return get_origin(annotation) in (list, tuple, dict, set, frozenset)


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def with_flags(
    settings: Settings, *, data_dir: Path | None = None, url: str | None = None
) -> Settings:
    """``settings`` with the CLI's global flags (``--data-dir``, ``--url``) over every other
    source, the environment included: ``load_settings``' overrides rank below the environment
    (as the file does), so ``MODELYARD_DATA_DIR`` would otherwise beat ``--data-dir``.
    Raises ConfigError for a bad URL."""
    changes: dict[str, Any] = {}
    if data_dir is not None:
        changes["data_dir"] = data_dir.expanduser()
    if url is not None:
        try:
            changes["url"] = check_url(url)
        except ValueError as exc:
            raise ConfigError(f"--url {url!r}: {exc}") from None
    return settings.model_copy(update=changes) if changes else settings
