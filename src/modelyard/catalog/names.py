"""What a model file's name says: family, parameters, quantization, split part, flags.

INTERFACE STUB: to be implemented. Contract: ``parse_filename(name) -> NameInfo`` is pure, never
raises, and returns ``None`` for every field it cannot tell.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NameInfo:
    stem: str  # the name without .gguf and without the split suffix
    family: str | None  # "qwen2.5-coder", "llama", "mistral", "deepseek-r1-0528-qwen3"
    parameters_b: float | None  # 14.0, 0.27, 46.7 for 8x7B (experts x size)... 30.0 for 30B-A3B
    active_parameters_b: float | None  # 3.0 for 30B-A3B
    quantization: str | None  # upper-case: "Q4_K_M", "IQ4_XS", "F16", "BF16", "Q8_0"
    split_part: int | None  # 1 for -00001-of-00003
    split_total: int | None  # 3
    instruct: bool
    coder: bool
    thinking: bool
    vision: bool
    embedding: bool
    mmproj: bool  # a projector file (mmproj-*.gguf, *-mmproj-*.gguf)


def parse_filename(name: str) -> NameInfo:
    raise NotImplementedError
