"""The vLLM engine: ``vllm serve`` for a model folder (safetensors) or a Hugging Face repo id.

Command: ``vllm serve MODEL --host 127.0.0.1 --port P --served-model-name INSTANCE_ID
--max-model-len CTX --gpu-memory-utilization F [--max-num-seqs N] [--enable-sleep-mode]``
plus the instance's extra arguments. ``F`` is the instance's memory estimate over the GPU's
total (modelyard's budget, not vLLM's 0.9 default, which would take the whole GPU), rounded up
to a hundredth. vLLM measures free memory when it starts and counts memory that other
processes gained meanwhile as its own (vllm #17979, #9198), so every vLLM instance on a GPU
shares one ``start_group``: the fleet starts them one after another.

Readiness: vLLM binds its port only once the engine is up (a minute for a large model), so a
refused connection and a non-200 ``/health`` both mean "loading"; then ``/v1/models`` must
list the served name. Sleep mode (``vllm.sleep_mode``, with ``VLLM_SERVER_DEV_MODE=1``, which
exposes the endpoints): ``POST /sleep?level=1`` keeps the weights in host RAM,
``level=2`` drops them, ``POST /wake_up`` brings them back, ``GET /is_sleeping`` tells.

Memory (on ``vllm.device``): weights are the model folder's ``*.safetensors`` bytes (or the
curated ``memory_bytes`` when given, or the folder is absent); KV cache is
``2 x layers x kv_heads x head_dim x 2 bytes x max-model-len`` from the folder's
``config.json`` (0 when it cannot be read); ``vllm.overhead_bytes`` covers the CUDA context,
graphs and activations. Reading the folder is a stat per file and one small JSON file.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelyard.engines.base import (
    HttpCall,
    LaunchPlan,
    LaunchSpec,
    MeasurementKey,
    MemoryEstimate,
    SleepPlan,
)
from modelyard.errors import EngineError
from modelyard.settings import VllmSettings

HOST = "127.0.0.1"
_KV_DTYPE_BYTES = 2  # fp16/bf16 cache, vLLM's default "auto" for these models
GAUGES = {
    "vllm:num_requests_running": "running",
    "vllm:num_requests_waiting": "waiting",
    "vllm:kv_cache_usage_perc": "kv_cache_usage",
}


class VllmEngine:
    """``device_totals``: bytes of each GPU (the memory inventory's, read at build)."""

    name = "vllm"

    def __init__(self, settings: VllmSettings, device_totals: Mapping[int, int]) -> None:
        self.settings = settings
        self.device_totals = dict(device_totals)

    def plan(self, spec: LaunchSpec) -> LaunchPlan:
        """Raises EngineError: no model folder or repo, no GPU known, an unusable binary."""
        model = _model_arg(spec)
        ctx = self._ctx(spec)
        utilization = self.utilization(self.estimate(spec))
        try:
            binary = shlex.split(self.settings.binary)
        except ValueError as exc:
            raise EngineError(f"vllm.binary cannot be split: {exc}") from None
        if not binary:
            raise EngineError("vllm.binary is empty")
        argv = [*binary, "serve", model, "--host", HOST, "--port", str(spec.port)]
        argv += ["--served-model-name", spec.instance_id, "--max-model-len", str(ctx)]
        argv += ["--gpu-memory-utilization", f"{utilization:.2f}"]
        if spec.args.parallel:
            argv += ["--max-num-seqs", str(spec.args.parallel)]
        env: dict[str, str] = {}
        sleep: SleepPlan | None = None
        if self.settings.sleep_mode:
            argv.append("--enable-sleep-mode")
            env["VLLM_SERVER_DEV_MODE"] = "1"  # the /sleep, /wake_up, /is_sleeping routes
            sleep = SleepPlan(
                sleep={level: HttpCall("POST", f"/sleep?level={level}") for level in (1, 2)},
                wake=HttpCall("POST", "/wake_up"),
                is_sleeping_path="/is_sleeping",
                host_bytes=self.estimate(spec).weights,
            )
        return LaunchPlan(
            argv=(*argv, *spec.args.extra_args),
            base_url=f"http://{HOST}:{spec.port}",
            health_path="/health",
            env=env,
            served_name=spec.instance_id,
            sleep=sleep,
            metrics_path="/metrics",
            start_group=f"gpu:{self.settings.device}",
        )

    def utilization(self, estimate: MemoryEstimate) -> float:
        """``--gpu-memory-utilization``: the estimate's share of its GPU, rounded up to a
        hundredth, at most 0.95. Raises EngineError when the GPU is not in the inventory."""
        total = self.device_totals.get(self.settings.device)
        if not total:
            raise EngineError(
                f"vllm needs GPU {self.settings.device} but the memory inventory has none; "
                "set memory.gpus or vllm.device"
            )
        share = math.ceil(estimate.total / total * 100) / 100
        if share > 0.95:
            raise EngineError(
                f"the model needs {estimate.total / 2**30:.1f} GiB, more than 95% of "
                f"GPU {self.settings.device} ({total / 2**30:.1f} GiB); lower the context"
            )
        return max(share, 0.01)

    def estimate(self, spec: LaunchSpec) -> MemoryEstimate:
        folder = Path(spec.model.path) if spec.model.path else None
        weights = spec.model.memory_bytes or _safetensors_bytes(folder)
        config = _config(folder)
        kv = _kv_bytes(config, self._ctx(spec)) if config else 0
        return MemoryEstimate(
            weights=weights,
            kv_cache=kv,
            compute=0,
            overhead=self.settings.overhead_bytes,
            device=self.settings.device,
        )

    def parse_memory_log(self, lines: list[str]) -> dict[str, int] | None:
        return None

    def measurement_key(self, spec: LaunchSpec) -> MeasurementKey | None:
        return None

    def parallel_slots(self, spec: LaunchSpec) -> int | None:
        return spec.args.parallel  # --max-num-seqs; vLLM batches up to 256 by default

    def parse_metrics(self, plan: LaunchPlan, body: bytes) -> dict[str, float] | None:
        return parse_metrics(body)

    def _ctx(self, spec: LaunchSpec) -> int:
        ctx = spec.args.ctx or self.settings.default_ctx
        limit = spec.model.context_length
        return min(ctx, limit) if limit else ctx


def parse_metrics(body: bytes) -> dict[str, float] | None:
    """The three gauges of vLLM's Prometheus ``/metrics`` (summed over label sets: one per
    model and engine): ``running``, ``waiting``, ``kv_cache_usage`` (0-1). None: none found."""
    found: dict[str, float] = {}
    for line in body.decode("utf-8", "replace").splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        key = GAUGES.get(name)
        if key is None:
            continue
        try:
            value = float(line.rsplit(" ", 1)[1])
        except (IndexError, ValueError):
            continue
        found[key] = found.get(key, 0.0) + value
    return found or None


def _model_arg(spec: LaunchSpec) -> str:
    model = spec.model
    if model.path:
        return model.path
    if model.hf_repo:
        return model.hf_repo
    raise EngineError(
        f"model {model.id} uses vllm but has no `path` (a model folder) or Hugging Face repo"
    )


def _safetensors_bytes(folder: Path | None) -> int:
    if folder is None or not folder.is_dir():
        return 0
    return sum(f.stat().st_size for f in folder.glob("*.safetensors") if f.is_file())


def _config(folder: Path | None) -> dict[str, Any] | None:
    if folder is None:
        return None
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and isinstance(data.get("text_config"), dict):
        data = data["text_config"]  # multimodal configs nest the language model's
    return data if isinstance(data, dict) else None


def _kv_bytes(config: Mapping[str, Any], ctx: int) -> int:
    """K and V for every layer and KV head at ``ctx`` tokens; 0 when the config lacks sizes."""
    try:
        layers = int(config["num_hidden_layers"])
        heads = int(config["num_attention_heads"])
        kv_heads = int(config.get("num_key_value_heads") or heads)
        head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // heads)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return 0
    return 2 * layers * kv_heads * head_dim * _KV_DTYPE_BYTES * ctx
