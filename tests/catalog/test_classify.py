"""Classification rules and tier boundaries."""

from __future__ import annotations

import pytest

from modelyard.catalog.classify import Traits, classify, is_low_bit, opens_thinking, tier_for
from modelyard.settings import Tier, TierThresholds, load_settings

QWEN3_TEMPLATE = (
    "{%- for message in messages %}{%- if '</think>' in message.content %}{%- set content = "
    "message.content.split('</think>')[-1] %}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"
)
INSTRUCT_2507_TEMPLATE = (
    "{%- if tools %}{{- '<tools>' }}{%- endif %}{%- for message in messages %}"
    "{%- if reasoning_content %}{{- '<think>\\n' + reasoning_content + '\\n</think>' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
R1_DISTILL_TEMPLATE = "{% if add_generation_prompt %}{{'<｜Assistant｜><think>\\n'}}{% endif %}"
PLAIN_TEMPLATE = "{% for m in messages %}{{ m.content }}{% endfor %}"


def traits(
    *names: str,
    chat_template: str | None = None,
    architecture: str | None = "llama",
    pooling_type: int | None = None,
    has_projector: bool = False,
    vision_keys: bool = False,
) -> Traits:
    return classify(
        names=names,
        chat_template=chat_template,
        architecture=architecture,
        pooling_type=pooling_type,
        has_projector=has_projector,
        vision_keys=vision_keys,
    )


@pytest.mark.parametrize(
    "name",
    [
        "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf",
        "QwQ-32B-Q4_K_M.gguf",
        "Marco-o1-Q4_K_M.gguf",
        "Phi-4-reasoning-Q4_K_M.gguf",
        "Qwen3-4B-Thinking-2507-Q8_0.gguf",
    ],
)
def test_thinking_names(name: str) -> None:
    assert traits(name).thinking is True


@pytest.mark.parametrize("name", ["r10-7b.gguf", "solo1-7b.gguf", "thinker-7b.gguf", "Q4_K_M"])
def test_thinking_words_inside_other_words_do_not_count(name: str) -> None:
    assert traits(name).thinking is False


def test_thinking_from_the_chat_template() -> None:
    assert traits("x.gguf", chat_template=R1_DISTILL_TEMPLATE).thinking is True
    assert traits("x.gguf", chat_template=QWEN3_TEMPLATE).thinking is True
    assert traits("x.gguf", chat_template="Reasoning: {{ reasoning_effort }}").thinking is True
    assert traits("x.gguf", chat_template="<think>").thinking is True  # no generation prompt


def test_a_template_that_only_strips_old_thinking_is_not_thinking() -> None:
    """Qwen3-Instruct-2507 renders earlier reasoning but never opens <think> for the answer."""
    assert opens_thinking(INSTRUCT_2507_TEMPLATE) is False
    assert traits("x.gguf", chat_template=INSTRUCT_2507_TEMPLATE).thinking is False
    assert opens_thinking(None) is False


@pytest.mark.parametrize(
    ("name", "coder"),
    [
        ("qwen2.5-coder-14b-instruct-q4_k_m.gguf", True),
        ("codellama-7b.Q4_K_M.gguf", True),
        ("Codestral-22B-v0.1-Q4_K_M.gguf", True),
        ("starcoder2-3b-Q8_0.gguf", True),
        ("Devstral-Small-2505-Q4_K_M.gguf", True),
        ("llama-7b-q4_k_m.gguf", False),
        ("decoder-only-1b.gguf", False),
    ],
)
def test_coder(name: str, coder: bool) -> None:
    assert traits(name).coder is coder


def test_instruct_from_names_or_any_chat_template() -> None:
    assert traits("gemma-3-4b-it-Q4_0.gguf").instruct is True
    assert traits("tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf").instruct is True
    assert traits("llama-7b-q4_k_m.gguf").instruct is False
    assert traits("llama-7b-q4_k_m.gguf", chat_template=PLAIN_TEMPLATE).instruct is True
    assert traits("base.gguf", "Llama 3.1 8B Instruct").instruct is True  # general.name


def test_vision_from_a_projector_or_vision_keys_only() -> None:
    assert traits("gemma-3-4b-it.gguf", has_projector=True).vision is True
    assert traits("gemma-3-4b-it.gguf", vision_keys=True).vision is True
    assert traits("llava-v1.6-mistral-7b.Q4_K_M.gguf").vision is False  # no projector found


def test_embedding() -> None:
    assert traits("qwen3-0.6b.gguf", architecture="qwen3", pooling_type=3).embedding is True
    assert traits("x.gguf", pooling_type=0).embedding is False
    assert traits("x.gguf", pooling_type=-1).embedding is False
    assert traits("x.gguf", architecture="nomic-bert").embedding is True
    assert traits("x.gguf", architecture="bert").embedding is True
    assert traits("bge-m3-F16.gguf").embedding is True
    assert traits("nomic-embed-text-v1.5.Q8_0.gguf").embedding is True
    assert traits("llama-7b.gguf").embedding is False


def test_tools_from_the_chat_template() -> None:
    assert traits("x.gguf", chat_template=INSTRUCT_2507_TEMPLATE).tools is True
    assert traits("x.gguf", chat_template="{{ tool_call.name }}").tools is True
    assert traits("x.gguf", chat_template=PLAIN_TEMPLATE).tools is False
    assert traits("x.gguf", chat_template="{{ toolset }}").tools is False
    assert traits("x.gguf").tools is False


@pytest.mark.parametrize(
    ("quantization", "low"),
    [
        ("Q2_K", True),
        ("Q3_K_M", True),
        ("Q4_K_M", True),
        ("Q4_0", True),
        ("IQ1_S", True),
        ("IQ2_XXS", True),
        ("IQ3_M", True),
        ("IQ4_XS", True),
        ("TQ1_0", True),
        ("TQ2_0", True),
        ("MXFP4", True),
        ("Q5_K_M", False),
        ("Q6_K", False),
        ("Q8_0", False),
        ("F16", False),
        ("BF16", False),
        (None, False),
    ],
)
def test_low_bit_quantizations(quantization: str | None, low: bool) -> None:
    assert is_low_bit(quantization) is low


DEFAULTS = TierThresholds()


def tier(
    parameters_b: float | None,
    quantization: str | None = "Q4_K_M",
    *,
    thinking: bool = False,
    embedding: bool = False,
    thresholds: TierThresholds = DEFAULTS,
) -> Tier | None:
    return tier_for(
        parameters_b=parameters_b,
        quantization=quantization,
        thinking=thinking,
        embedding=embedding,
        thresholds=thresholds,
    )


def test_default_thresholds_come_from_config() -> None:
    assert (DEFAULTS.fast_max, DEFAULTS.powerful_min) == (7.0, 14.0)


@pytest.mark.parametrize(
    ("parameters_b", "quantization", "expected"),
    [
        (0.27, "Q4_K_M", "fast"),
        (6.99, "Q4_K_M", "fast"),
        (6.99, "IQ2_XS", "fast"),
        (7.0, "Q4_K_M", "balanced"),  # fast_max is exclusive
        (3.0, "Q8_0", "balanced"),
        (3.0, "F16", "balanced"),
        (3.0, None, "balanced"),  # unknown quantization for a small model
        (13.99, "Q4_K_M", "balanced"),
        (14.0, "Q8_0", "powerful"),  # powerful_min is inclusive
        (70.0, "Q2_K", "powerful"),
        (None, "Q4_K_M", "balanced"),
    ],
)
def test_tier_boundaries(
    parameters_b: float | None, quantization: str | None, expected: Tier
) -> None:
    assert tier(parameters_b, quantization) == expected


def test_thinking_is_powerful_and_embedding_has_no_tier() -> None:
    assert tier(1.5, "Q4_K_M", thinking=True) == "powerful"
    assert tier(0.6, "Q8_0", embedding=True) is None
    assert tier(0.6, "Q8_0", embedding=True, thinking=True) is None


def test_thresholds_from_config_move_the_boundaries() -> None:
    settings = load_settings(tiers={"fast_max": 2.0, "powerful_min": 30.0})
    thresholds = settings.tiers
    assert tier(1.9, thresholds=thresholds) == "fast"
    assert tier(2.0, thresholds=thresholds) == "balanced"
    assert tier(29.9, thresholds=thresholds) == "balanced"
    assert tier(30.0, thresholds=thresholds) == "powerful"
