"""Which model (or instance) a request's ``model`` field names. Pure: no I/O, no logging.

Order: instance id (``gemma:02``), model id, display name, model name, Ollama name
(``name:tag``), a configured alias, ``tier:fast|balanced|powerful``, ``role:NAME``, ``auto``.
Names are matched case-insensitively. Only enabled, readable models are ever chosen; a name
that points at another model resolves to ``Unresolved`` saying why, with the closest names.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field

from modelyard.catalog.model import Model
from modelyard.routing.view import RoutingView, servable

TIERS = ("fast", "balanced", "powerful")
_MAX_DEPTH = 4  # alias -> auto -> tier -> model, and no further (an alias loop stops here)


@dataclass(frozen=True)
class ResolveConfig:
    """The configured parts of resolution (from ``gateway`` settings)."""

    default_model: str | None = None
    tier_defaults: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    role_defaults: Mapping[str, str] = field(default_factory=dict)  # the active profile's


@dataclass(frozen=True)
class Resolved:
    """The model to serve; ``instance_id`` when the name pinned one instance."""

    model_id: str
    instance_id: str | None
    reason: str


@dataclass(frozen=True)
class Unresolved:
    """No servable model: ``message`` says why, ``close`` lists the nearest known names."""

    name: str
    message: str
    close: tuple[str, ...] = ()


def resolve(
    name: str,
    view: RoutingView,
    config: ResolveConfig = ResolveConfig(),
    *,
    embedding: bool = False,
) -> Resolved | Unresolved:
    """Resolve ``name`` over ``view`` for a chat/completion request, or an embeddings one
    (``embedding``: then ``auto`` means an embedding model). Never raises."""
    key = name.strip().casefold()
    if embedding and key == "auto" and "auto" not in {a.casefold() for a in config.aliases}:
        return _auto_embedding(view)
    return _resolve(name.strip(), view, config, 0)


def refusal(model: Model, view: RoutingView, *, embedding: bool) -> str | None:
    """Why ``model`` cannot serve this kind of request (None: it can), naming models that
    can: an embeddings request needs an embedding model, a chat one a model that is not."""
    if model.embedding == embedding:
        return None
    able = sorted(m.id for m in view.models.values() if servable(m) and m.embedding == embedding)
    if embedding:
        hint = f"; models that can: {', '.join(able[:5])}" if able else "; no model here can"
        return f"model '{model.id}' cannot make embeddings{hint}"
    hint = f"; chat models: {', '.join(able[:5])}" if able else ""
    return f"model '{model.id}' is an embedding model: it only answers /v1/embeddings{hint}"


def _resolve(
    name: str, view: RoutingView, config: ResolveConfig, depth: int
) -> Resolved | Unresolved:
    if depth > _MAX_DEPTH:
        return Unresolved(name, f"'{name}' is an alias that does not end in a model")
    key = name.casefold()
    target = view.index.get(key)
    alias = _alias(key, config.aliases)
    if alias is not None and (target is None or target.kind == "ollama"):
        return _via(f"alias:{name}", _resolve(alias, view, config, depth + 1))
    if target is not None:
        model = view.models[target.model_id]
        if not servable(model):
            return _refused(name, model)
        reason = "instance" if target.instance_id else target.kind.replace(" ", "-")
        if target.kind in ("display name", "ollama"):
            reason = f"{reason}:{name}->{target.instance_id or target.model_id}"
        return Resolved(model.id, target.instance_id, reason)
    if key.startswith("tier:"):
        return _tier(name, key.removeprefix("tier:"), view, config, depth)
    if key.startswith("role:"):
        role = key.removeprefix("role:")
        pinned = config.role_defaults.get(role)
        if pinned is not None:
            return _via(f"role:{role}", _resolve(pinned, view, config, depth + 1))
        return _role(name, role, view)
    if key == "auto":
        return _auto(view, config, depth)
    return Unresolved(name, f"no model named '{name}'", close_names(name, view, config))


def _alias(key: str, aliases: Mapping[str, str]) -> str | None:
    for alias, target in aliases.items():
        if alias.casefold() == key:
            return target
    return None


def _via(prefix: str, inner: Resolved | Unresolved) -> Resolved | Unresolved:
    if isinstance(inner, Unresolved):
        return inner
    return Resolved(inner.model_id, inner.instance_id, f"{prefix}->{inner.reason}")


def _refused(name: str, model: Model) -> Unresolved:
    why = f"has an error: {model.error}" if model.error else "is disabled"
    return Unresolved(name, f"model '{model.id}' {why}")


def _tier(
    name: str, tier: str, view: RoutingView, config: ResolveConfig, depth: int
) -> Resolved | Unresolved:
    if tier not in TIERS:
        return Unresolved(name, f"unknown tier '{tier}'", tuple(f"tier:{t}" for t in TIERS))
    pinned = config.tier_defaults.get(tier)
    if pinned is not None:
        return _via(f"tier:{tier}", _resolve(pinned, view, config, depth + 1))
    running = view.running_models()
    choices = [m for m in _chat_models(view) if m.tier == tier]
    if not choices:
        return Unresolved(name, f"no enabled model in tier '{tier}'")
    # Prefer a model already serving (no load), then the largest in the tier, then the id.
    best = min(choices, key=lambda m: (m.id not in running, -(m.parameters_b or 0.0), m.id))
    return Resolved(best.id, None, f"tier:{tier}->{best.id}")


def _role(name: str, role: str, view: RoutingView) -> Resolved | Unresolved:
    running = view.running_models()
    choices = [m for m in _chat_models(view, embedding=None) if role in m.roles]
    if not choices:
        return Unresolved(name, f"no enabled model has the role '{role}'")
    fitting = [m for m in choices if m.id in running or fits(m, view.loadable_bytes)]
    if not fitting:
        return Unresolved(name, f"no model with the role '{role}' fits in memory")
    best = min(fitting, key=lambda m: (-m.roles[role], m.id not in running, m.id))
    return Resolved(best.id, None, f"role:{role}(priority {best.roles[role]})->{best.id}")


def _auto(view: RoutingView, config: ResolveConfig, depth: int) -> Resolved | Unresolved:
    if config.default_model:
        return _via("auto", _resolve(config.default_model, view, config, depth + 1))
    running = sorted(m.id for m in _chat_models(view) if m.id in view.running_models())
    if running:
        return Resolved(running[0], None, f"auto->{running[0]}")
    return Unresolved("auto", "'auto' needs gateway.default_model, or a model already running")


def _auto_embedding(view: RoutingView) -> Resolved | Unresolved:
    """``auto`` on /v1/embeddings: a running embedding model, else the first by id."""
    running = view.running_models()
    choices = _chat_models(view, embedding=True)
    if not choices:
        return Unresolved("auto", "no enabled embedding model")
    best = min(choices, key=lambda m: (m.id not in running, m.id))
    return Resolved(best.id, None, f"auto(embedding)->{best.id}")


def _chat_models(view: RoutingView, embedding: bool | None = False) -> list[Model]:
    return [
        m
        for m in view.models.values()
        if servable(m) and (embedding is None or m.embedding == embedding)
    ]


def fits(model: Model, loadable_bytes: int | None) -> bool:
    """Whether ``model`` may be loaded (``RoutingView.loadable_bytes``): unknown sizes and
    unknown memory always fit."""
    need = model.memory_bytes or model.size_bytes or None
    return loadable_bytes is None or need is None or need <= loadable_bytes


def close_names(name: str, view: RoutingView, config: ResolveConfig, n: int = 5) -> tuple[str, ...]:
    """The known names nearest to ``name`` (difflib), servable targets only."""
    spelt = {key: t.name for key, t in view.index.items() if servable(view.models[t.model_id])}
    spelt.update({a.casefold(): a for a in config.aliases})
    spelt.update({f"tier:{t}": f"tier:{t}" for t in TIERS})
    close = difflib.get_close_matches(name.casefold(), list(spelt), n=n, cutoff=0.4)
    return tuple(spelt[key] for key in close)
