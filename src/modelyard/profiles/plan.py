"""What activating a profile changes: a pure decision over frozen data.

``plan_activation`` compares the profile with the catalog's enabled flags and the fleet's
instances and returns what to do; ``ProfileService.activate`` carries the plan out. Planning
apart from acting gives a dry run for free and keeps the rules testable without processes.

Rules:

- Models: with a non-empty ``enabled_models``, exactly those models end up enabled (each
  instance's model too); every other enabled model is disabled. An empty list changes no flag.
- Instances, per model the profile lists: each wanted instance (``count`` copies of an entry)
  is matched to an existing instance of that model with the same persona (display name,
  system prompt, web search, on-demand, idle TTL), lowest id first. A matched instance is
  started unless it is on-demand; an unmatched wanted one is created (and started unless
  on-demand). Existing instances left unmatched are stopped, never deleted: switching back
  finds them again.
- Instances of every other model are stopped when the profile manages instances (a non-empty
  ``instances``) or when their model gets disabled.
- Only real changes are listed: starting a running instance or stopping a stopped one is not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelyard.fleet.instance import clean_display_name, clean_system_prompt
from modelyard.profiles.schema import Profile, ProfileInstance


@dataclass(frozen=True)
class Persona:
    """The settings an instance is matched on."""

    display_name: str | None = None
    system_prompt: str | None = None
    web_search: bool = False
    on_demand: bool = False
    idle_ttl: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "display_name": self.display_name,
            "system_prompt": self.system_prompt,
            "web_search": self.web_search,
            "on_demand": self.on_demand,
            "idle_ttl": self.idle_ttl,
        }


@dataclass(frozen=True)
class CurrentInstance:
    """One existing instance as the plan sees it. ``running``: desired or actually up."""

    id: str
    model_id: str
    persona: Persona
    running: bool


@dataclass(frozen=True)
class NewInstance:
    """An instance to create, and whether to start it afterwards."""

    model_id: str
    persona: Persona
    start: bool

    def to_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "start": self.start, **self.persona.to_dict()}


@dataclass(frozen=True)
class ActivationPlan:
    """What to do, in this order: enable, create, start, stop, disable.

    Enabling before starting lets a new instance pass the gateway's enabled check; stopping
    before disabling leaves no instance of a disabled model running.
    """

    profile: str
    enable: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()
    create: tuple[NewInstance, ...] = ()
    start: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = field(default=())  # matched instances already as wanted

    @property
    def empty(self) -> bool:
        return not (self.enable or self.disable or self.create or self.start or self.stop)

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "enable": list(self.enable),
            "disable": list(self.disable),
            "create": [c.to_dict() for c in self.create],
            "start": list(self.start),
            "stop": list(self.stop),
            "unchanged": list(self.unchanged),
        }


def persona_of(entry: ProfileInstance, presets: Mapping[str, str]) -> Persona:
    """The persona a profile entry asks for; ``preset`` fills in a missing system prompt.
    Raises ValidationFailed for a prompt the fleet would refuse (see ``check_profile``)."""
    prompt = entry.system_prompt
    if prompt is None and entry.preset is not None:
        prompt = presets.get(entry.preset)
    # Cleaned as the fleet cleans them, so a profile entry matches the instance it created.
    return Persona(
        display_name=clean_display_name(entry.display_name),
        system_prompt=clean_system_prompt(prompt),
        web_search=entry.web_search,
        on_demand=entry.on_demand,
        idle_ttl=entry.idle_ttl,
    )


def plan_activation(
    profile: Profile,
    enabled: Mapping[str, bool],
    instances: Sequence[CurrentInstance],
    presets: Mapping[str, str],
) -> ActivationPlan:
    """The plan that brings the catalog (``enabled``: model id -> enabled now) and the fleet
    (``instances``) in line with ``profile``. ``presets`` maps preset names to prompts.
    Never raises; ids the catalog does not hold are left out of enable/disable."""
    wanted_models = set(profile.enabled_models)
    if wanted_models:
        wanted_models |= {entry.model for entry in profile.instances}
        enable = sorted(m for m in wanted_models if m in enabled and not enabled[m])
        disable = sorted(m for m, on in enabled.items() if on and m not in wanted_models)
    else:
        enable, disable = [], []
    disabled = set(disable)

    create: list[NewInstance] = []
    start: list[str] = []
    stop: list[str] = []
    unchanged: list[str] = []
    managed = {entry.model for entry in profile.instances}
    by_model: dict[str, list[CurrentInstance]] = {}
    for inst in sorted(instances, key=lambda i: i.id):
        by_model.setdefault(inst.model_id, []).append(inst)

    for model_id in sorted(managed):
        free = list(by_model.get(model_id, []))
        for entry in profile.instances:
            if entry.model != model_id:
                continue
            persona = persona_of(entry, presets)
            for _ in range(entry.count):
                match = next((i for i in free if i.persona == persona), None)
                if match is None:
                    create.append(NewInstance(model_id, persona, start=not persona.on_demand))
                    continue
                free.remove(match)
                if not persona.on_demand and not match.running:
                    start.append(match.id)
                else:
                    unchanged.append(match.id)
        stop += [i.id for i in free if i.running]

    for model_id, group in by_model.items():
        if model_id in managed:
            continue
        if profile.instances or model_id in disabled:
            stop += [i.id for i in group if i.running]

    return ActivationPlan(
        profile=profile.name,
        enable=tuple(enable),
        disable=tuple(disable),
        create=tuple(create),
        start=tuple(sorted(start)),
        stop=tuple(sorted(stop)),
        unchanged=tuple(sorted(unchanged)),
    )
