"""The file name parser over real-world GGUF file names."""

from __future__ import annotations

import random

import pytest

from modelyard.catalog.names import NameInfo, parameters_from_size, parse_filename

# name -> (family, parameters_b, quantization, flags). Flags: I instruct, C coder, T thinking,
# V vision, E embedding, M mmproj.
TABLE: dict[str, tuple[str | None, float | None, str | None, str]] = {
    "qwen2.5-coder-14b-instruct-q4_k_m.gguf": ("qwen2.5-coder", 14, "Q4_K_M", "IC"),
    "DeepSeek-R1-0528-Qwen3-8B-Q4_K_M.gguf": ("deepseek-r1-0528-qwen3", 8, "Q4_K_M", "T"),
    "llama-7b-q4_k_m.gguf": ("llama", 7, "Q4_K_M", ""),
    "mistral-7b-instruct-v0.2.Q4_K_M.gguf": ("mistral", 7, "Q4_K_M", "I"),
    "Qwen3-30B-A3B-Instruct-2507-Q4_K_M.gguf": ("qwen3", 30, "Q4_K_M", "I"),
    "Mixtral-8x7B-Instruct-v0.1.Q5_K_M.gguf": ("mixtral", 56, "Q5_K_M", "I"),
    "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf": ("meta-llama-3.1", 8, "Q4_K_M", "I"),
    "mmproj-model-f16.gguf": ("model", None, "F16", "VM"),
    "gemma-3-4b-it-qat-Q4_0.gguf": ("gemma-3", 4, "Q4_0", "I"),
    "Phi-3-mini-4k-instruct-q4.gguf": ("phi-3-mini-4k", None, "Q4", "I"),
    "nomic-embed-text-v1.5.Q8_0.gguf": ("nomic-embed-text", None, "Q8_0", "E"),
    "QwQ-32B-Q4_K_M.gguf": ("qwq", 32, "Q4_K_M", "T"),
    "llava-v1.6-mistral-7b.Q4_K_M.gguf": ("llava-v1.6-mistral", 7, "Q4_K_M", "V"),
    "gpt-oss-20b-MXFP4.gguf": ("gpt-oss", 20, "MXFP4", ""),
    "SmolLM2-135M-Instruct-Q8_0.gguf": ("smollm2", 0.135, "Q8_0", "I"),
    "DeepSeek-Coder-V2-Lite-Instruct-Q4_K_M.gguf": ("deepseek-coder-v2-lite", None, "Q4_K_M", "IC"),
    "granite-3.1-8b-instruct-Q4_K_M.gguf": ("granite-3.1", 8, "Q4_K_M", "I"),
    "Llama-3.2-1B-Instruct-IQ4_XS.gguf": ("llama-3.2", 1, "IQ4_XS", "I"),
    "bge-m3-F16.gguf": ("bge-m3", None, "F16", "E"),
    "tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf": ("tinyllama", 1.1, "Q4_K_M", "I"),
    "gemma-3-270m-Q4_K_M.gguf": ("gemma-3", 0.27, "Q4_K_M", ""),
    "Qwen2.5-0.5B-Instruct-Q8_0.gguf": ("qwen2.5", 0.5, "Q8_0", "I"),
    "Qwen2.5-VL-7B-Instruct-Q4_K_M.gguf": ("qwen2.5-vl", 7, "Q4_K_M", "IV"),
    "mmproj-Qwen2.5-VL-7B-Instruct-f16.gguf": ("mmproj-qwen2.5-vl", 7, "F16", "IVM"),
    "codellama-7b-instruct.Q4_K_M.gguf": ("codellama", 7, "Q4_K_M", "IC"),
    "starcoder2-3b-Q8_0.gguf": ("starcoder2", 3, "Q8_0", "C"),
    "Codestral-22B-v0.1-Q4_K_M.gguf": ("codestral", 22, "Q4_K_M", "C"),
    "Devstral-Small-2505-Q4_K_M.gguf": ("devstral-small-2505", None, "Q4_K_M", "C"),
    "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf": ("deepseek-r1-distill-qwen", 1.5, "Q4_K_M", "T"),
    "Qwen3-4B-Thinking-2507-Q8_0.gguf": ("qwen3", 4, "Q8_0", "T"),
    "Phi-4-reasoning-plus-Q4_K_M.gguf": ("phi-4-reasoning-plus", None, "Q4_K_M", "T"),
    "Marco-o1-Q4_K_M.gguf": ("marco-o1", None, "Q4_K_M", "T"),
    "Llama-3.1-Nemotron-70B-Instruct-HF-Q4_K_M.gguf": ("llama-3.1-nemotron", 70, "Q4_K_M", "I"),
    "Mistral-Small-3.2-24B-Instruct-2506-Q4_K_M.gguf": ("mistral-small-3.2", 24, "Q4_K_M", "I"),
    "gemma-3n-E4B-it-Q4_K_M.gguf": ("gemma-3n", 4, "Q4_K_M", "I"),
    "Llama-2-13b-chat.Q5_K_S.gguf": ("llama-2", 13, "Q5_K_S", "I"),
    "mxbai-embed-large-v1-f16.gguf": ("mxbai-embed-large", None, "F16", "E"),
    "all-MiniLM-L6-v2-Q8_0.gguf": ("all-minilm-l6", None, "Q8_0", "E"),
    "multilingual-e5-large-Q8_0.gguf": ("multilingual-e5-large", None, "Q8_0", "E"),
    "gte-Qwen2-1.5B-instruct-Q4_K_M.gguf": ("gte-qwen2", 1.5, "Q4_K_M", "IE"),
    "Qwen3-Embedding-0.6B-Q8_0.gguf": ("qwen3-embedding", 0.6, "Q8_0", "E"),
    "Mixtral-8x22B-Instruct-v0.1.IQ2_XXS.gguf": ("mixtral", 176, "IQ2_XXS", "I"),
    "Meta-Llama-3-8B-Instruct.fp16.gguf": ("meta-llama-3", 8, "F16", "I"),
    "Llama-3.3-70B-Instruct-BF16.gguf": ("llama-3.3", 70, "BF16", "I"),
    "falcon-7b-instruct.Q3_K_L.gguf": ("falcon", 7, "Q3_K_L", "I"),
    "Qwen2.5-Coder-32B-Instruct-Q6_K.gguf": ("qwen2.5-coder", 32, "Q6_K", "IC"),
    "Hermes-3-Llama-3.1-8B.Q4_K_M.gguf": ("hermes-3-llama-3.1", 8, "Q4_K_M", ""),
    "BitNet-b1.58-2B-4T-TQ1_0.gguf": ("bitnet-b1.58", 2, "TQ1_0", ""),
    "Qwen3-1.7B-IQ3_XXS.gguf": ("qwen3", 1.7, "IQ3_XXS", ""),
    "stablelm-2-zephyr-1_6b-Q4_0.gguf": ("stablelm-2-zephyr", 1.6, "Q4_0", ""),
    "gemma-2-9b-it-Q4_K_S.gguf": ("gemma-2", 9, "Q4_K_S", "I"),
    "ggml-model-Q4_K_M.gguf": ("ggml-model", None, "Q4_K_M", ""),
}

SPLITS = {
    "model-00001-of-00003.gguf": ("model", 1, 3),
    "Qwen3-235B-A22B-UD-Q2_K_XL-00001-of-00002.gguf": ("Qwen3-235B-A22B-UD-Q2_K_XL", 1, 2),
    "Llama-3.1-405B-Instruct-Q4_K_M-00003-of-00005.gguf": (
        "Llama-3.1-405B-Instruct-Q4_K_M",
        3,
        5,
    ),
    "DeepSeek-V3-Q2_K_L-00002-of-00005.gguf": ("DeepSeek-V3-Q2_K_L", 2, 5),
}


def flags(info: NameInfo) -> str:
    marks = zip(
        "ICTVEM",
        (info.instruct, info.coder, info.thinking, info.vision, info.embedding, info.mmproj),
        strict=True,
    )
    return "".join(mark for mark, on in marks if on)


def test_the_table_is_large_enough() -> None:
    assert len(TABLE) + len(SPLITS) >= 40


@pytest.mark.parametrize(("name", "expected"), TABLE.items(), ids=list(TABLE))
def test_real_world_names(
    name: str, expected: tuple[str | None, float | None, str | None, str]
) -> None:
    info = parse_filename(name)
    assert (info.family, info.parameters_b, info.quantization, flags(info)) == expected
    assert info.stem == name.removesuffix(".gguf")
    assert (info.split_part, info.split_total) == (None, None)


@pytest.mark.parametrize(("name", "expected"), SPLITS.items(), ids=list(SPLITS))
def test_split_names(name: str, expected: tuple[str, int, int]) -> None:
    info = parse_filename(name)
    assert (info.stem, info.split_part, info.split_total) == expected


def test_moe_sizes() -> None:
    qwen = parse_filename("Qwen3-235B-A22B-UD-Q2_K_XL-00001-of-00002.gguf")
    assert (qwen.family, qwen.parameters_b, qwen.active_parameters_b) == ("qwen3", 235, 22)
    assert qwen.quantization == "Q2_K_XL"
    assert parse_filename("Qwen3-30B-A3B-Q8_0.gguf").active_parameters_b == 3
    assert parameters_from_size("30B-A3B") == (30, 3)
    assert parameters_from_size("8x7B") == (56, None)
    assert parameters_from_size("270M") == (0.27, None)
    assert parameters_from_size("large") == (None, None)


def test_tokens_not_words_inside_words() -> None:
    """``r1`` in ``r10``, ``o1`` in ``solo1``, ``it`` in ``italian`` are not flags."""
    info = parse_filename("r10-solo1-italian-7b-Q4_K_M.gguf")
    assert (info.thinking, info.instruct) == (False, False)


def test_paths_and_odd_inputs_never_raise() -> None:
    assert parse_filename("/models/org/repo/llama-7b-q4_k_m.gguf").family == "llama"
    empty = parse_filename("")
    assert (empty.stem, empty.family, empty.parameters_b, empty.quantization) == (
        "",
        None,
        None,
        None,
    )
    randomness = random.Random(3)
    alphabet = "abcQKx_-.0123456789BMof/ "
    for _ in range(2000):
        parse_filename("".join(randomness.choices(alphabet, k=randomness.randrange(40))))
