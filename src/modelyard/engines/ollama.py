"""The Ollama engine: a model served by the running Ollama server itself (``ollama.host``,
from ``OLLAMA_HOST``), not by a llama-server modelyard starts.

Which models: a curated entry with ``engine: ollama`` and ``served_name`` set to Ollama's
``name:tag`` (else the record's Ollama name, else the entry's id). A model discovered in
Ollama's store stays a llama-server model (engine ``llamacpp``, reading the blob directly);
adding such an entry serves the same weights through Ollama instead, per model.

Nothing is spawned (``attached``): a start sends ``POST /api/generate {"model": NAME,
"keep_alive": -1}`` (an empty prompt loads the model; a negative keep_alive keeps it loaded
until told otherwise), and the instance is ready once ``GET /api/version`` answers 200 and
``GET /api/ps`` lists NAME; a stop sends the same call with ``"keep_alive": 0`` (unload now).
Chat goes through Ollama's OpenAI-compatible ``/v1`` with ``model`` set to NAME.
Memory: estimated from the model's size (curated ``memory_bytes``, else the file's size) on
GPU 0 when there is a GPU; once loaded, ``/api/ps``'s ``size`` and ``size_vram`` for NAME are
scraped into the instance's ``load``.
"""

from __future__ import annotations

import json

from modelyard.engines.base import (
    HttpCall,
    LaunchPlan,
    LaunchSpec,
    MeasurementKey,
    MemoryEstimate,
)
from modelyard.settings import OllamaSettings


class OllamaEngine:
    name = "ollama"

    def __init__(self, settings: OllamaSettings, gpu_count: int = 0) -> None:
        self.settings = settings
        self.gpu_count = gpu_count

    def plan(self, spec: LaunchSpec) -> LaunchPlan:
        model = spec.model
        name = model.served_name or model.ollama_name or model.id
        return LaunchPlan(
            argv=(),
            base_url=self.settings.host.rstrip("/"),
            health_path="/api/version",
            attached=True,
            load=_generate(name, -1),
            unload=_generate(name, 0),
            models_path="/api/ps",
            served_name=name,
            metrics_path="/api/ps",
        )

    def estimate(self, spec: LaunchSpec) -> MemoryEstimate:
        size = spec.model.memory_bytes or spec.model.size_bytes
        return MemoryEstimate(
            weights=size, kv_cache=0, compute=0, device=0 if self.gpu_count else None
        )

    def parse_memory_log(self, lines: list[str]) -> dict[str, int] | None:
        return None

    def measurement_key(self, spec: LaunchSpec) -> MeasurementKey | None:
        return None

    def parallel_slots(self, spec: LaunchSpec) -> int | None:
        return spec.args.parallel  # OLLAMA_NUM_PARALLEL is the server's, not ours

    def parse_metrics(self, plan: LaunchPlan, body: bytes) -> dict[str, float] | None:
        return loaded_size(body, plan.served_name or "")


def loaded_size(body: bytes, name: str) -> dict[str, float] | None:
    """``size`` and ``size_vram`` (bytes) of model ``name`` in an ``/api/ps`` answer."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    models = data.get("models") if isinstance(data, dict) else None
    for entry in models if isinstance(models, list) else ():
        if isinstance(entry, dict) and name in (entry.get("name"), entry.get("model")):
            return {
                "size": float(entry.get("size") or 0),
                "size_vram": float(entry.get("size_vram") or 0),
            }
    return None


def _generate(name: str, keep_alive: int) -> HttpCall:
    body = json.dumps({"model": name, "keep_alive": keep_alive}).encode()
    return HttpCall("POST", "/api/generate", body)
