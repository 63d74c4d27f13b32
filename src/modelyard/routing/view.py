"""The frozen snapshot that routing decides over: models, instances and a name index.

Built by the gateway from the catalog and the fleet; routing never reads either itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from modelyard.catalog.model import Model

InstanceState = Literal["stopped", "starting", "ready", "error", "stopping", "sleeping"]
NameKind = Literal["instance", "model", "display name", "ollama"]


@dataclass(frozen=True)
class InstanceInfo:
    """What routing needs of one instance. ``persona`` says it has a system prompt."""

    id: str
    model_id: str
    state: InstanceState
    in_flight: int = 0
    display_name: str | None = None
    persona: bool = False
    on_demand: bool = False


@dataclass(frozen=True)
class Target:
    """What one name (spelt ``name``) points at: a model, or one instance of it."""

    kind: NameKind
    model_id: str
    instance_id: str | None = None
    name: str = ""


@dataclass(frozen=True)
class RoutingView:
    """One consistent snapshot. ``index`` maps case-folded names to targets (see ``build``).

    Memory, on the pool with the most room: ``free_memory_bytes`` is its budget less what
    admitted instances hold; ``loadable_bytes`` adds what unpinned instances hold (eviction
    can take it back when they are idle), so it is what one more model could be given. Both
    are ``None`` when unknown (then every model fits).
    """

    models: Mapping[str, Model]
    instances: tuple[InstanceInfo, ...]
    index: Mapping[str, Target]
    free_memory_bytes: int | None = None
    by_model: Mapping[str, tuple[InstanceInfo, ...]] = field(default_factory=dict)
    loadable_bytes: int | None = None

    def instance(self, instance_id: str) -> InstanceInfo | None:
        return next((i for i in self.instances if i.id == instance_id), None)

    def running_models(self) -> frozenset[str]:
        """Ids of models with at least one ready instance."""
        return frozenset(i.model_id for i in self.instances if i.state == "ready")


def servable(model: Model) -> bool:
    """A model requests may reach: enabled and readable."""
    return model.enabled and model.error is None


def build(
    models: Iterable[Model] | Mapping[str, Model],
    instances: Iterable[InstanceInfo],
    free_memory_bytes: int | None = None,
    index: Mapping[str, Target] | None = None,
    *,
    loadable_bytes: int | None = None,
) -> RoutingView:
    """The view over ``models`` and ``instances``. ``index`` is reused when given (the
    caller built it with ``build_index`` over the same names); otherwise it is built.
    """
    by_id: Mapping[str, Model] = (
        models if isinstance(models, Mapping) else {m.id: m for m in models}
    )
    infos = tuple(i for i in instances if i.model_id in by_id)
    grouped: dict[str, list[InstanceInfo]] = {}
    for info in infos:
        grouped.setdefault(info.model_id, []).append(info)
    return RoutingView(
        models=by_id,
        instances=infos,
        index=build_index(by_id.values(), infos) if index is None else index,
        free_memory_bytes=free_memory_bytes,
        by_model={k: tuple(v) for k, v in grouped.items()},
        loadable_bytes=free_memory_bytes if loadable_bytes is None else loadable_bytes,
    )


def build_index(models: Iterable[Model], instances: Iterable[InstanceInfo]) -> dict[str, Target]:
    """Index every name a request may use, earlier kinds winning a clash: instance ids, model
    ids, display names (instances', then models'), model names, Ollama names (``name:tag``,
    and ``name`` alone for ``name:latest``). Keys are case-folded. Disabled models are indexed
    too, so resolution can say why they are refused. Depends only on the models and on each
    instance's id and display name.
    """
    by_id = {m.id: m for m in models}
    infos = [i for i in instances if i.model_id in by_id]
    index: dict[str, Target] = {}

    def add(
        name: str | None, kind: NameKind, model_id: str, instance_id: str | None = None
    ) -> None:
        if name and name.strip():
            spelt = name.strip()
            index.setdefault(spelt.casefold(), Target(kind, model_id, instance_id, spelt))

    for info in infos:
        add(info.id, "instance", info.model_id, info.id)
    for model in by_id.values():
        add(model.id, "model", model.id)
    for info in infos:
        add(info.display_name, "display name", info.model_id, info.id)
    for model in by_id.values():
        add(model.display_name, "display name", model.id)
        add(model.name, "display name", model.id)
    for model in by_id.values():
        for name in (model.ollama_name, *model.ollama_names):
            add(name, "ollama", model.id)
            if name and name.endswith(":latest"):
                add(name.removesuffix(":latest"), "ollama", model.id)
    return index
