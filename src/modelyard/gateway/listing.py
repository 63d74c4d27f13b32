"""``GET /v1/models`` and ``GET /health``: what the gateway can serve, and how it is doing."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from modelyard.catalog.model import Model
from modelyard.fleet.leases import Leases
from modelyard.gateway.snapshot import Snapshot
from modelyard.routing import health as health_rules
from modelyard.routing.health import HEALTHY, Health, HealthPolicy
from modelyard.routing.view import InstanceInfo

_MODEL_FIELDS = (
    "display_name",
    "engine",
    "family",
    "parameters_b",
    "quantization",
    "context_length",
    "tier",
    "thinking",
    "coder",
    "vision",
    "embedding",
    "tools",
    "roles",
    "ollama_name",
    "memory_bytes",
)


def models_listing(snap: Snapshot, aliases: Mapping[str, str]) -> dict[str, Any]:
    """Enabled models, their instances and the aliases, as OpenAI's model list."""
    data: list[dict[str, Any]] = []
    for model in snap.view.models.values():
        if not (model.enabled and model.error is None):
            continue
        instances = snap.view.by_model.get(model.id, ())
        data.append(_model_entry(model, [i.id for i in instances]))
        for info in instances:
            data.append(_instance_entry(info))
    for alias, target in aliases.items():
        data.append(_entry(alias, {"kind": "alias", "target": target}))
    return {"object": "list", "data": data}


def health_report(
    snap: Snapshot,
    healths: Mapping[str, Health],
    policy: HealthPolicy,
    leases: Leases,
    *,
    serving: bool,
) -> dict[str, Any]:
    """Status, and per instance its state, load and health."""
    now = time.monotonic()
    instances = {}
    for info in snap.view.instances:
        record = healths.get(info.id, HEALTHY)
        instances[info.id] = {
            "state": info.state,
            "in_flight": leases.in_flight(info.id),
            "queued": leases.queued(info.id),
            "health": health_rules.verdict(record, now, policy),
            "score": round(health_rules.score(record, now, policy), 3),
            "cooldown_s": round(max(0.0, record.cooldown_until - now), 3),
            "last_error": record.last_error,
        }
    return {
        "status": "ok" if serving else "starting",
        "models": sum(1 for m in snap.view.models.values() if m.enabled and not m.error),
        "instances": instances,
    }


def _entry(name: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": 0,
        "owned_by": "modelyard",
        "modelyard": extra,
    }


def _model_entry(model: Model, instances: list[str]) -> dict[str, Any]:
    extra: dict[str, Any] = {"kind": "model"}
    extra.update({name: getattr(model, name) for name in _MODEL_FIELDS})
    extra["instances"] = instances
    return _entry(model.id, extra)


def _instance_entry(info: InstanceInfo) -> dict[str, Any]:
    return _entry(
        info.id,
        {
            "kind": "instance",
            "model": info.model_id,
            "state": info.state,
            "display_name": info.display_name,
            "persona": info.persona,
        },
    )
