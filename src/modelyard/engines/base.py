"""The Engine protocol: what the fleet needs to know to run one instance of a model.

An engine only describes: the command and environment, where to ask whether it is ready, how
much memory it will take, how to stop it, and what its log says about memory it really used.
It never spawns or kills a process; the fleet does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from modelyard.catalog.model import Model


@dataclass(frozen=True)
class EngineArgs:
    """The engine arguments of one instance. ``None`` means the engine's default."""

    ctx: int | None = None
    gpu_layers: int | None = None
    parallel: int | None = None
    threads: int | None = None
    cache_type: str | None = None
    extra_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class LaunchSpec:
    """Everything needed to build one instance's command."""

    instance_id: str
    model: Model
    port: int
    alias: str
    args: EngineArgs = EngineArgs()


@dataclass(frozen=True)
class HttpCall:
    """One HTTP request the fleet sends to a server, as data: ``path`` (with its query) is
    relative to the plan's ``base_url``; ``body`` is JSON (``b""``: none). Any 2xx is success."""

    method: Literal["GET", "POST"]
    path: str
    body: bytes = b""


@dataclass(frozen=True)
class SleepPlan:
    """How a server sleeps instead of stopping (vLLM sleep mode): ``sleep[level]`` frees the
    GPU (level 1 keeps the weights in host RAM, ``host_bytes`` of them; level 2 drops them),
    ``wake`` brings it back, and GET ``is_sleeping_path`` answers ``{"is_sleeping": bool}``."""

    sleep: dict[int, HttpCall]
    wake: HttpCall
    is_sleeping_path: str
    host_bytes: int = 0


@dataclass(frozen=True)
class LaunchPlan:
    """What the fleet runs. ``argv[0]`` is an absolute path or a name on PATH.

    ``attached``: the server is not the fleet's to spawn (Ollama's own server, a remote API);
    ``argv`` is then empty, starting means sending ``load`` (when set) and polling readiness,
    stopping means sending ``unload`` (when set). Readiness is GET ``health_path`` answering
    200 and then, when ``served_name`` is set, GET ``models_path`` listing it (an OpenAI
    ``/v1/models`` answer). ``api_key_env`` names the environment variable whose value is
    sent as ``Authorization: Bearer`` to this server (read when sending, never stored).
    ``start_group``: plans with the same group start one after another (vLLM instances on one
    GPU: each one's memory profiling must not see another's still growing).
    """

    argv: tuple[str, ...]
    base_url: str  # http://127.0.0.1:PORT
    health_path: str = "/health"  # ready when GET returns 200
    env: dict[str, str] = field(default_factory=dict)
    stop_argv: tuple[str, ...] | None = None  # run instead of SIGTERM when set
    cwd: str | None = None
    # Variables of the manager's environment the server gets although modelyard withholds
    # them by default (MODELYARD_*, names that look secret: see fleet.environment)
    pass_env: tuple[str, ...] = ()
    attached: bool = False
    load: HttpCall | None = None
    unload: HttpCall | None = None
    models_path: str = "/v1/models"
    served_name: str | None = None  # the model name requests must carry upstream
    sleep: SleepPlan | None = None
    metrics_path: str | None = None  # scraped while ready; the engine's parse_metrics reads it
    start_group: str | None = None
    api_key_env: str | None = None


@dataclass(frozen=True)
class MeasurementKey:
    """What a measurement of an instance's memory depends on besides the model: reported
    buffer sizes are kept under it and apply to a later estimate only on a match."""

    ctx: int
    gpu_layers: int
    parallel: int
    cache_type: str
    ubatch: int


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes an instance will hold, by part, and where (``gpu`` index or ``None`` for RAM)."""

    weights: int
    kv_cache: int
    compute: int
    device: int | None = None
    measured: bool = False  # corrected by what the engine reported earlier
    overhead: int = 0  # the server process itself on ``device``: runtime, libraries, tokenizer
    host: int = 0  # with a GPU ``device``: bytes also held in system RAM (layers left on CPU)

    @property
    def total(self) -> int:
        """Bytes on ``device``: what admission compares with that device's budget."""
        return self.weights + self.kv_cache + self.compute + self.overhead


class Engine(Protocol):
    """One way to serve a model. Adding an engine is one module implementing this."""

    name: str

    def plan(self, spec: LaunchSpec) -> LaunchPlan:
        """The command for this instance. Raises EngineError (bad arguments, missing binary)."""
        ...

    def estimate(self, spec: LaunchSpec) -> MemoryEstimate:
        """Memory the instance will need, before it starts. Pure: no I/O beyond the catalog."""
        ...

    def parse_memory_log(self, lines: list[str]) -> dict[str, int] | None:
        """Buffer sizes (bytes, by name) that the server reported in its log, if any."""
        ...

    def measurement_key(self, spec: LaunchSpec) -> MeasurementKey | None:
        """The key reported buffer sizes are kept under; None when the engine reports none.
        Raises EngineError for unusable arguments."""
        ...

    def parallel_slots(self, spec: LaunchSpec) -> int | None:
        """Requests the server handles at once (the gateway queues the rest); None: no limit
        known. Raises EngineError for unusable arguments."""
        ...

    def parse_metrics(self, plan: LaunchPlan, body: bytes) -> dict[str, float] | None:
        """Load figures from the plan's ``metrics_path`` answer (None: nothing to read)."""
        ...
