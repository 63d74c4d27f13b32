"""What a profile file holds, and how it is checked.

A profile is one YAML file, ``<profiles_dir>/<name>.yaml``. ``check_profile`` validates the
shape (pydantic) and every model id it names against the catalog, and reports every problem
at once: a user fixing a file should not have to run it once per mistake.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from modelyard.errors import InvalidReference, ValidationFailed
from modelyard.fleet.instance import MAX_DISPLAY_NAME, MAX_SYSTEM_PROMPT
from modelyard.settings import DeploymentProfileName, Tier

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
Strategy = Literal["round_robin", "least_loaded", "random"]


class _Part(BaseModel):
    # Strict: a file or a request saying ``count: "2"`` or ``web_search: 1`` is told so, and
    # the API's schema (these models) says exactly what is accepted.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


class TierConfig(_Part):
    """One tier's routing threshold. ``max_score`` ``None`` means unbounded (YAML ``.inf``)."""

    name: Tier
    max_score: float | None = Field(None, ge=0)
    expected_time_seconds: float = Field(gt=0)
    description: str | None = Field(None, max_length=500)

    @field_validator("max_score", mode="before")
    @classmethod
    def _infinite_is_unbounded(cls, value: Any) -> Any:
        # JSON cannot carry infinity; ``.inf`` in YAML and ``null`` in JSON mean the same.
        if isinstance(value, float) and math.isinf(value) and value > 0:
            return None
        return value


class TwoStage(_Part):
    enabled: bool = False
    stage1_tier: Tier = "balanced"
    stage2_tier: Tier = "powerful"


class LoadBalancing(_Part):
    enabled: bool = True
    strategy: Strategy = "least_loaded"


class Defaults(_Part):
    """``auto``: the model ``auto`` means; ``tiers``/``roles``: the model each one picks."""

    auto: str | None = None
    tiers: dict[Tier, str] = Field(default_factory=dict)
    roles: dict[str, str] = Field(default_factory=dict)


class ProfileInstance(_Part):
    """``count`` instances of ``model``, each with this persona and these switches.

    ``preset`` names a system-prompt preset; it is used when ``system_prompt`` is not given.
    ``on_demand`` instances are created but left stopped until a request needs them.
    """

    model: str = Field(min_length=1)
    count: int = Field(1, ge=1, le=16)
    display_name: str | None = Field(None, min_length=1, max_length=MAX_DISPLAY_NAME)
    system_prompt: str | None = Field(None, max_length=MAX_SYSTEM_PROMPT)
    preset: str | None = Field(None, min_length=1, max_length=64)
    web_search: bool = False
    on_demand: bool = False
    idle_ttl: float | None = Field(None, gt=0)  # seconds


class DeploymentOverride(_Part):
    """Per-profile overrides of the deployment settings (None: keep config or suggestion)."""

    profile: DeploymentProfileName | None = None
    memory_budget_bytes: int | None = Field(None, ge=0)
    max_models_loaded: int | None = Field(None, ge=1)


class ProfileContent(_Part):
    """What a profile says, but its name (``PUT /api/models/profiles/{name}`` may leave the
    name out: the path gives it)."""

    description: str | None = Field(None, max_length=1000)
    enabled_models: list[str] = Field(default_factory=list)
    tier_config: list[TierConfig] = Field(default_factory=list)
    two_stage: TwoStage = TwoStage()
    load_balancing: LoadBalancing = LoadBalancing()
    defaults: Defaults = Defaults()
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    instances: list[ProfileInstance] = Field(default_factory=list)
    deployment: DeploymentOverride | None = None


class Profile(ProfileContent):
    """One profile. ``enabled_models`` empty leaves every model's enabled flag as it is;
    ``instances`` empty leaves instances alone (except those of models it disables)."""

    name: str = Field(pattern=NAME_PATTERN)

    def model_refs(self) -> list[tuple[str, str]]:
        """Every ``(where, model id)`` the profile names, in file order."""
        refs = [(f"enabled_models[{i}]", m) for i, m in enumerate(self.enabled_models)]
        if self.defaults.auto is not None:
            refs.append(("defaults.auto", self.defaults.auto))
        refs += [(f"defaults.tiers.{t}", m) for t, m in self.defaults.tiers.items()]
        refs += [(f"defaults.roles.{r}", m) for r, m in self.defaults.roles.items()]
        for source, targets in self.fallbacks.items():
            refs.append((f"fallbacks.{source}", source))
            refs += [(f"fallbacks.{source}[{i}]", t) for i, t in enumerate(targets)]
        refs += [(f"instances[{i}].model", inst.model) for i, inst in enumerate(self.instances)]
        return refs

    def to_yaml_data(self) -> dict[str, Any]:
        """JSON- and YAML-ready dict without defaults, as written to the file (name first)."""
        rest = self.model_dump(mode="json", exclude_defaults=True, exclude={"name"})
        return {"name": self.name, **rest}


def normalise(data: Any) -> Any:
    """Accept the older layout with a ``profile: {name, description}`` block at the top."""
    if isinstance(data, dict) and isinstance(data.get("profile"), dict):
        head = data["profile"]
        rest = {k: v for k, v in data.items() if k != "profile"}
        return {**{k: head[k] for k in ("name", "description") if k in head}, **rest}
    return data


def _loc(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def shape_problems(exc: ValidationError) -> list[str]:
    """One line per pydantic error: ``field.path: message``."""
    return [f"{_loc(err['loc'])}: {err['msg']}" for err in exc.errors()]


def reference_problems(
    profile: Profile, known_models: Collection[str], known_presets: Collection[str] | None
) -> list[str]:
    """Unknown model ids, unknown presets, and references the profile contradicts itself on."""
    problems = [
        f"{where}: unknown model '{model}'"
        for where, model in profile.model_refs()
        if model not in known_models
    ]
    enabled = set(profile.enabled_models)
    if enabled:
        problems += [
            f"instances[{i}].model: '{inst.model}' is not in enabled_models"
            for i, inst in enumerate(profile.instances)
            if inst.model not in enabled
        ]
    if known_presets is not None:
        problems += [
            f"instances[{i}].preset: unknown preset '{inst.preset}'"
            for i, inst in enumerate(profile.instances)
            if inst.preset is not None and inst.preset not in known_presets
        ]
    tiers = [t.name for t in profile.tier_config]
    problems += [
        f"tier_config: tier '{t}' appears twice" for t in sorted(set(tiers)) if tiers.count(t) > 1
    ]
    if profile.two_stage.enabled and tiers:
        for stage in ("stage1_tier", "stage2_tier"):
            tier = getattr(profile.two_stage, stage)
            if tier not in tiers:
                problems.append(f"two_stage.{stage}: tier '{tier}' is not in tier_config")
    return problems


def check_profile(
    data: Any,
    known_models: Collection[str],
    known_presets: Collection[str] | None = None,
    *,
    origin: str = "profile",
) -> Profile:
    """Validate ``data`` into a Profile.

    Raises ValidationFailed whose message lists every problem and whose ``problems`` extra
    holds them one per item; ``param`` names the first bad field. Bad fields are checked
    first; a well-formed profile naming unknown models or presets, or contradicting itself,
    raises InvalidReference (a ValidationFailed) instead.
    """
    try:
        profile = Profile.model_validate(normalise(data))
    except ValidationError as exc:
        _raise(origin, shape_problems(exc), ValidationFailed)
    problems = reference_problems(profile, known_models, known_presets)
    if problems:
        _raise(origin, problems, InvalidReference)
    return profile


def _raise(origin: str, problems: list[str], error: type[ValidationFailed]) -> NoReturn:
    param = problems[0].split(":", 1)[0]
    count = len(problems)
    head = f"{origin}: {count} problem{'s' if count > 1 else ''}"
    raise error(f"{head}: " + "; ".join(problems), param=param, problems=problems)
