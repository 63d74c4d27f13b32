"""User overrides: validated here, applied to a discovered model here, stored by the catalog.

Pure functions. A bad value raises ValidationFailed naming the field (``param``) and saying
what was expected.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, get_args

from modelyard.catalog.classify import tier_for
from modelyard.catalog.model import Model, Overrides
from modelyard.errors import ValidationFailed
from modelyard.settings import Tier, TierThresholds

FIELDS = ("tier", "thinking", "enabled", "display_name", "roles")
TIERS: tuple[Tier, ...] = get_args(Tier)
# The API's schema states these too (``api.catalog``), so what it documents is what is checked.
ROLE_NAME_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"
MAX_DISPLAY_NAME = 128
# At least one character that is not blank, and none below U+0020 (what check_display_name asks).
DISPLAY_NAME_PATTERN = r"^[^\x00-\x1f]*[^\x00-\x1f\s][^\x00-\x1f]*$"
_ROLE_NAME = re.compile(ROLE_NAME_PATTERN)


def check_tier(value: object, where: str = "tier") -> Tier:
    for tier in TIERS:
        if value == tier:
            return tier
    raise ValidationFailed(
        f"{where}: expected one of {', '.join(TIERS)}, got {value!r}", param=where
    )


def check_bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationFailed(f"{where}: expected true or false, got {value!r}", param=where)
    return value


def check_display_name(value: object, where: str = "display_name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(f"{where}: expected a non-empty name, got {value!r}", param=where)
    if len(value) > MAX_DISPLAY_NAME or any(ord(c) < 32 for c in value):
        raise ValidationFailed(
            f"{where}: expected at most {MAX_DISPLAY_NAME} printable characters", param=where
        )
    return value.strip()


def check_roles(value: object, where: str = "roles") -> dict[str, int]:
    """A mapping of role name (``code``, ``caption``...) to priority 0-100."""
    if not isinstance(value, dict):
        raise ValidationFailed(f"{where}: expected a mapping of role to priority", param=where)
    roles: dict[str, int] = {}
    for name, priority in value.items():
        if not isinstance(name, str) or not _ROLE_NAME.fullmatch(name):
            raise ValidationFailed(
                f"{where}: role name {name!r} must be lower-case letters, digits, '_', '-' "
                "or '.', starting with a letter",
                param=where,
            )
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 100:
            raise ValidationFailed(
                f"{where}.{name}: expected a priority from 0 to 100, got {priority!r}",
                param=where,
            )
        roles[name] = priority
    return dict(sorted(roles.items()))


def check_field(name: object) -> str:
    if name not in FIELDS:
        raise ValidationFailed(
            f"field: expected one of {', '.join(FIELDS)}, got {name!r}", param="field"
        )
    return str(name)


def overrides_from_dict(data: object, where: str = "overrides") -> Overrides:
    """Validate a stored or imported mapping into Overrides. Unknown keys are an error."""
    if not isinstance(data, dict):
        raise ValidationFailed(f"{where}: expected a mapping", param=where)
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ValidationFailed(
            f"{where}: unknown field {unknown[0]!r} (expected {', '.join(FIELDS)})", param=where
        )
    values: dict[str, Any] = {}
    if data.get("tier") is not None:
        values["tier"] = check_tier(data["tier"], f"{where}.tier")
    for name in ("thinking", "enabled"):
        if data.get(name) is not None:
            values[name] = check_bool(data[name], f"{where}.{name}")
    if data.get("display_name") is not None:
        values["display_name"] = check_display_name(data["display_name"], f"{where}.display_name")
    if data.get("roles") is not None:
        values["roles"] = check_roles(data["roles"], f"{where}.roles")
    return Overrides(**values)


def apply_overrides(
    model: Model, overrides: Overrides, thresholds: TierThresholds, *, auto_tier: bool
) -> Model:
    """The model as the user sees it. ``auto_tier`` says the tier is computed (with the
    effective thinking flag and the current thresholds) unless overridden; curated entries
    with a tier in config and broken files pass False."""
    thinking = model.thinking if overrides.thinking is None else overrides.thinking
    tier = model.tier
    if overrides.tier is not None:
        tier = overrides.tier
    elif auto_tier:
        tier = tier_for(
            parameters_b=model.parameters_b,
            quantization=model.quantization,
            thinking=thinking,
            embedding=model.embedding,
            thresholds=thresholds,
        )
    return replace(
        model,
        tier=tier,
        tier_overridden=overrides.tier is not None,
        thinking=thinking,
        thinking_overridden=overrides.thinking is not None,
        enabled=model.enabled if overrides.enabled is None else overrides.enabled,
        display_name=overrides.display_name or model.display_name,
        roles={**model.roles, **(overrides.roles or {})},
    )
