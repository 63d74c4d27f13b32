"""Pure classification: what kind of model this is, and its tier.

Every function is pure over its arguments: no I/O, no settings read behind the caller's back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelyard.catalog.names import parse_filename
from modelyard.settings import Tier, TierThresholds

# Architectures that only embed (or rerank): they never get a chat tier.
EMBEDDING_ARCHITECTURES = frozenset(
    {
        "bert",
        "nomic-bert",
        "nomic-bert-moe",
        "jina-bert-v2",
        "jina-bert-v3",
        "modern-bert",
        "neo-bert",
        "t5encoder",
    }
)
# Quantizations of at most four bits per weight: "Q2-Q4" in the tier rule.
LOW_BIT_PREFIXES = (
    "Q1",
    "Q2",
    "Q3",
    "Q4",
    "IQ1",
    "IQ2",
    "IQ3",
    "IQ4",
    "TQ1",
    "TQ2",
    "MXFP4",
    "NVFP4",
)

_TOOLS = re.compile(r"\btools\b|tool_call")
_GENERATION_PROMPT = "add_generation_prompt"


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
    """The model's traits from its names, chat template and header.

    thinking: a thinking word in a name (R1, QwQ, o1, reasoning, thinking) or a chat template
    that opens ``<think>`` when it prompts for an answer (or a reasoning-effort template);
    coder: a code word in a name; instruct: an instruct word in a name or any chat template;
    vision: a paired projector or vision keys in the header; embedding: a pooling type above 0,
    an embedding word in a name or an embedding architecture; tools: a chat template that
    mentions tools.
    """
    parsed = [parse_filename(name) for name in names if name]
    embedding = (
        (pooling_type is not None and pooling_type > 0)
        or any(info.embedding for info in parsed)
        or (architecture or "").lower() in EMBEDDING_ARCHITECTURES
    )
    return Traits(
        thinking=any(info.thinking for info in parsed) or opens_thinking(chat_template),
        coder=any(info.coder for info in parsed),
        instruct=any(info.instruct for info in parsed) or bool(chat_template),
        vision=has_projector or vision_keys,
        embedding=embedding,
        tools=chat_template is not None and _TOOLS.search(chat_template) is not None,
    )


def opens_thinking(chat_template: str | None) -> bool:
    """Whether a chat template starts the answer in a thinking block.

    Only the part after the last ``add_generation_prompt`` counts when there is one: templates
    of non-thinking models (Qwen3-Instruct-2507) still mention ``<think>`` to strip it from
    earlier turns, but only thinking models open it for the new answer.
    """
    if not chat_template:
        return False
    if "reasoning_effort" in chat_template:  # gpt-oss: reasoning is always on, set by effort
        return True
    at = chat_template.rfind(_GENERATION_PROMPT)
    return "<think>" in (chat_template[at:] if at >= 0 else chat_template)


def is_low_bit(quantization: str | None) -> bool:
    """Whether a quantization stores at most four bits per weight (Q2-Q4, IQ1-IQ4, TQ, FP4)."""
    return quantization is not None and quantization.upper().startswith(LOW_BIT_PREFIXES)


def tier_for(
    *,
    parameters_b: float | None,
    quantization: str | None,
    thinking: bool,
    embedding: bool,
    thresholds: TierThresholds,
) -> Tier | None:
    """thinking -> powerful; >= powerful_min -> powerful; < fast_max at Q2-Q4 -> fast;
    otherwise balanced; embedding models -> None (no chat tier).

    A model of unknown size, or a small one of unknown or wider quantization, is balanced.
    """
    if embedding:
        return None
    if thinking:
        return "powerful"
    if parameters_b is None:
        return "balanced"
    if parameters_b >= thresholds.powerful_min:
        return "powerful"
    if parameters_b < thresholds.fast_max and is_low_bit(quantization):
        return "fast"
    return "balanced"
