"""What a model file's name says: family, parameters, quantization, split part, flags.

``parse_filename(name) -> NameInfo`` is pure, never raises, and returns ``None`` for every field
it cannot tell. It covers the publishers' usual styles: ``qwen2.5-coder-14b-instruct-q4_k_m``,
``mistral-7b-instruct-v0.2.Q4_K_M`` (a dot before the quantization), ``Mixtral-8x7B-...``
(experts x size), ``Qwen3-30B-A3B-...`` (total and active), ``...-UD-Q2_K_XL-00001-of-00002``
(Unsloth dynamic quants, split parts), ``mmproj-...`` projectors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class NameInfo:
    stem: str  # the name without .gguf and without the split suffix
    family: str | None  # "qwen2.5-coder", "llama", "mistral", "deepseek-r1-0528-qwen3"
    parameters_b: float | None  # 14.0, 0.27, 56.0 for 8x7B (experts x size), 30.0 for 30B-A3B
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


_SUFFIX = re.compile(r"\.gguf$", re.IGNORECASE)
_SPLIT = re.compile(r"[-._](\d{1,5})-of-(\d{1,5})$", re.IGNORECASE)
_QUANT = re.compile(
    r"(?:^|[-._])(?:UD[-_])?"
    r"(?P<quant>I?Q[1-8](?:_(?:K|[0-9]|NL|XXS|XS|S|M|L|XL))*|TQ[12]_0|MXFP4(?:_MOE)?|NVFP4"
    r"|BF16|F16|F32|FP16|FP32)"
    r"(?=$|[-._])",
    re.IGNORECASE,
)
_UNIT = {"M": 1e-3, "B": 1.0, "T": 1e3}
_NUMBER = r"(\d+(?:[._]\d+)?)"  # "1_6b" is StabilityAI's 1.6B
_MOE_SIZE = re.compile(rf"(?<![A-Za-z0-9.])(\d+)x{_NUMBER}([MBT])(?![A-Za-z0-9])", re.IGNORECASE)
_SIZE = re.compile(rf"(?<![A-Za-z0-9.]){_NUMBER}([MBT])(?![A-Za-z0-9])", re.IGNORECASE)
_EFFECTIVE_SIZE = re.compile(rf"(?<![A-Za-z0-9.])E{_NUMBER}B(?![A-Za-z0-9])", re.IGNORECASE)
_ACTIVE = re.compile(rf"(?<![A-Za-z0-9.])A{_NUMBER}([MB])(?![A-Za-z0-9])", re.IGNORECASE)
_TOKEN_SPLIT = re.compile(r"[-_.\s/:]+")
_VERSION = re.compile(r"v\d+")
_SEPARATORS = "-_. "

_INSTRUCT = frozenset({"instruct", "it", "chat", "inst", "sft", "rlhf", "dpo"})
_THINKING = frozenset({"r1", "o1", "o3", "reasoning", "reasoner", "thinking", "think"})
_VISION = frozenset({"vl", "vision", "mmproj", "vlm", "pixtral", "llava", "omni"})
_EMBEDDING = frozenset({"embed", "embedding", "embeddings", "e5", "retrieval", "reranker"})
_FLAG_TOKENS = _INSTRUCT | {"qat"}  # words that end a family name


def parse_filename(name: str) -> NameInfo:
    """What ``name`` (a file name, a path's last part, or a model's display name) says."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = _SUFFIX.sub("", base)
    split_part = split_total = None
    split = _SPLIT.search(stem)
    if split is not None:
        split_part, split_total = int(split.group(1)), int(split.group(2))
        stem = stem[: split.start()]
    quant_match = None
    for match in _QUANT.finditer(stem):
        quant_match = match
    quantization = _normalise_quant(quant_match.group("quant")) if quant_match else None
    body = stem[: quant_match.start()] if quant_match else stem
    total, active, size_at = _size(body)
    tokens = name_tokens(stem)
    return NameInfo(
        stem=stem,
        family=_family(body, size_at),
        parameters_b=total,
        active_parameters_b=active,
        quantization=quantization,
        split_part=split_part,
        split_total=split_total,
        instruct=any(token in _INSTRUCT for token in tokens),
        coder=any(_is_coder(token) for token in tokens),
        thinking=any(_is_thinking(token) for token in tokens),
        vision=any(_is_vision(token) for token in tokens),
        embedding=_is_embedding(tokens, stem.lower()),
        mmproj="mmproj" in tokens or stem.lower().startswith("mmproj"),
    )


def name_tokens(text: str) -> tuple[str, ...]:
    """The lower-case words of a name, split at ``- _ . / :`` and spaces."""
    return tuple(token for token in _TOKEN_SPLIT.split(text.lower()) if token)


def parameters_from_size(label: str) -> tuple[float | None, float | None]:
    """Billions of parameters, total and active, from a size such as ``general.size_label``:
    ``270M`` -> 0.27, ``7B`` -> 7, ``8x7B`` -> 56 (experts x size), ``30B-A3B`` -> (30, 3)."""
    total, active, _ = _size(label)
    return total, active


def _size(text: str) -> tuple[float | None, float | None, int | None]:
    """(total, active, where the size starts in ``text``) in billions, from the first size."""
    active_match = _ACTIVE.search(text)
    active = _billions(active_match.group(1), active_match.group(2)) if active_match else None
    moe = _MOE_SIZE.search(text)
    plain = _SIZE.search(text)
    if moe is not None and (plain is None or moe.start() <= plain.start()):
        experts = int(moe.group(1))
        return _round(experts * _billions(moe.group(2), moe.group(3))), active, moe.start()
    if plain is not None:
        return _billions(plain.group(1), plain.group(2)), active, plain.start()
    effective = _EFFECTIVE_SIZE.search(text)  # gemma-3n-E4B: four billion effective
    if effective is not None:
        return _billions(effective.group(1), "B"), active, effective.start()
    return None, active, None


def _billions(number: str, unit: str) -> float:
    return _round(float(number.replace("_", ".")) * _UNIT[unit.upper()])


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def _normalise_quant(text: str) -> str:
    quant = text.upper()
    return {"FP16": "F16", "FP32": "F32", "MXFP4_MOE": "MXFP4"}.get(quant, quant)


def _family(body: str, size_at: int | None) -> str | None:
    """The lower-case slug before the size; without a size, the words before the first flag
    word, less a trailing version (``nomic-embed-text-v1.5`` -> ``nomic-embed-text``)."""
    if size_at is not None:
        family = body[:size_at].strip(_SEPARATORS).lower()
        return _slug(family) or None
    words = [word for word in re.split(r"[-_\s]+", body.strip(_SEPARATORS).lower()) if word]
    kept: list[str] = []
    for word in words:
        if word in _FLAG_TOKENS or word == "mmproj":
            if kept:
                break
            continue
        kept.append(word)
    while len(kept) > 1 and _VERSION.fullmatch(kept[-1].split(".")[0]):
        kept.pop()
    return _slug("-".join(kept)) or None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text).strip("-.")


def _is_coder(token: str) -> bool:
    return (
        token.startswith(("code", "codestral", "devstral"))
        or (token.endswith("coder") and not token.endswith(("decoder", "encoder")))
        or "starcoder" in token
        or token == "coding"
    )


def _is_thinking(token: str) -> bool:
    return token in _THINKING or token.startswith("qwq")


def _is_vision(token: str) -> bool:
    return token in _VISION or token.startswith("llava")


def _is_embedding(tokens: tuple[str, ...], lowered: str) -> bool:
    if any(token in _EMBEDDING or token.startswith(("embed", "bge", "gte")) for token in tokens):
        return True
    return "minilm" in lowered or "nomic-embed" in lowered
