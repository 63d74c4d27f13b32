"""Pure classification: what kind of model this is, and its tier.

INTERFACE STUB: to be implemented. Every function is pure over its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.settings import Tier, TierThresholds


@dataclass(frozen=True)
class Traits:
    thinking: bool
    coder: bool
    instruct: bool
    vision: bool
    embedding: bool
    tools: bool


def classify(
    *,
    names: tuple[str, ...],  # file name, general.name, basename, finetune, repo name...
    chat_template: str | None,
    architecture: str | None,
    pooling_type: int | None,
    has_projector: bool,
    vision_keys: bool,
) -> Traits:
    raise NotImplementedError


def tier_for(
    *,
    parameters_b: float | None,
    quantization: str | None,
    thinking: bool,
    embedding: bool,
    thresholds: TierThresholds,
) -> Tier | None:
    """thinking -> powerful; >= powerful_min -> powerful; < fast_max at Q2-Q4 -> fast;
    otherwise balanced; embedding models -> None (no chat tier)."""
    raise NotImplementedError
