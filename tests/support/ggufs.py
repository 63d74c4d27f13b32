"""Synthetic GGUF files for tests and benchmarks, written with the ``gguf`` package's GGUFWriter.

``write_gguf(path, **fields)`` writes one small, valid GGUF whose header holds exactly the
fields asked for (a field left at ``None`` is not written), plus a vocabulary and a few tiny
tensors, so that every value our reader reports is known in advance::

    write_gguf(tmp_path / "tiny-1b-q4_k_m.gguf", name="Tiny", size_label="1B")
    write_gguf(path, arch="clip", clip=True)                       # a vision projector
    write_gguf(path, split_count=3, split_no=0)                    # the first part of a split
    write_gguf(path, tensors=[tensor("w", (4, 256), Q4_K)])        # chosen tensor types

``tensor_bytes(specs)`` gives the data size our reader must report for those tensors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np

# ggml tensor types and llama.cpp file types used across the tests.
F32, F16, Q4_0, Q8_0, Q4_K, Q6_K, IQ4_XS, BF16, MXFP4 = 0, 1, 2, 8, 12, 14, 23, 30, 39
FT_F16, FT_Q4_0, FT_Q8_0, FT_Q4_K_M, FT_IQ4_XS = 1, 2, 7, 15, 30


@dataclass(frozen=True)
class TensorSpec:
    """One tensor: ``shape`` in numpy order (the last dimension is the row), a ggml type."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int = F32


def tensor(name: str, shape: Sequence[int], ggml_type: int = F32) -> TensorSpec:
    return TensorSpec(name, tuple(shape), ggml_type)


DEFAULT_TENSORS = (
    tensor("token_embd.weight", (8, 32), F16),
    tensor("blk.0.attn_q.weight", (2, 256), Q4_K),
    tensor("output_norm.weight", (32,), F32),
)


def tensor_bytes(specs: Sequence[TensorSpec]) -> int:
    """The data size of ``specs`` as ggml stores it (whole blocks, no padding)."""
    total = 0
    for spec in specs:
        block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(spec.ggml_type)]
        total += int(np.prod(spec.shape)) // block * type_size
    return total


def tensor_elements(specs: Sequence[TensorSpec]) -> int:
    return sum(int(np.prod(spec.shape)) for spec in specs)


def vocabulary(size: int) -> list[str]:
    """``size`` distinct token strings: byte-ish tokens, then words growing longer."""
    return [f"<tok{i}>" if i < 16 else f"\u2581w{i:x}" for i in range(size)]


def write_gguf(
    path: Path,
    *,
    arch: str = "llama",
    name: str | None = None,
    basename: str | None = None,
    size_label: str | None = None,
    finetune: str | None = None,
    license: str | None = None,
    file_type: int | None = FT_Q4_K_M,
    context_length: int | None = 4096,
    block_count: int | None = 2,
    embedding_length: int | None = 32,
    head_count: int | None = 4,
    head_count_kv: int | Sequence[int] | None = None,
    key_length: int | None = None,
    value_length: int | None = None,
    expert_count: int | None = None,
    expert_used_count: int | None = None,
    pooling_type: int | None = None,
    chat_template: str | None = None,
    vocab_size: int = 32,
    tokens: Sequence[str] | None = None,
    merges: Sequence[str] | None = None,
    scores: bool = True,
    clip: bool = False,
    vision_keys: bool = False,
    split_count: int | None = None,
    split_no: int | None = None,
    alignment: int | None = None,
    big_endian: bool = False,
    extra: Mapping[str, Any] | None = None,
    tensors: Sequence[TensorSpec] = DEFAULT_TENSORS,
) -> Path:
    """Write a GGUF file at ``path`` and return ``path``.

    Keys are written in llama.cpp's order: general.*, ``{arch}.*``, then the tokenizer
    (tokens, scores, token types, merges, chat template), then ``extra`` (any key: value, typed
    by GGUFWriter's rules: int -> INT32... use numpy scalars for other widths). ``clip`` writes
    a projector's ``clip.*`` keys, ``vision_keys`` a VLM's ``{arch}.vision.*`` keys.
    ``big_endian`` writes the byte order of s390x builds. The parent folder must exist.
    """
    endian = gguf.GGUFEndian.BIG if big_endian else gguf.GGUFEndian.LITTLE
    writer = gguf.GGUFWriter(path, arch, endianess=endian)
    if alignment is not None:
        writer.add_custom_alignment(alignment)
    for key, text in (
        ("general.name", name),
        ("general.basename", basename),
        ("general.size_label", size_label),
        ("general.finetune", finetune),
        ("general.license", license),
    ):
        if text is not None:
            writer.add_string(key, text)
    if file_type is not None:
        writer.add_file_type(file_type)
    if split_no is not None:
        writer.add_uint16("split.no", split_no)
    if split_count is not None:
        writer.add_uint16("split.count", split_count)
    for suffix, number in (
        ("context_length", context_length),
        ("block_count", block_count),
        ("embedding_length", embedding_length),
        ("attention.head_count", head_count),
        ("attention.key_length", key_length),
        ("attention.value_length", value_length),
        ("expert_count", expert_count),
        ("expert_used_count", expert_used_count),
    ):
        if number is not None:
            writer.add_uint32(f"{arch}.{suffix}", number)
    if isinstance(head_count_kv, int):
        writer.add_uint32(f"{arch}.attention.head_count_kv", head_count_kv)
    elif head_count_kv is not None:
        writer.add_array(f"{arch}.attention.head_count_kv", [int(n) for n in head_count_kv])
    if pooling_type is not None:
        writer.add_uint32(f"{arch}.pooling_type", pooling_type)
    if clip:
        writer.add_bool("clip.has_vision_encoder", True)
        writer.add_string("clip.projector_type", "mlp")
        writer.add_uint32("clip.vision.image_size", 224)
    if vision_keys:
        writer.add_uint32(f"{arch}.vision.image_size", 896)
    words = list(tokens) if tokens is not None else vocabulary(vocab_size)
    if words:
        writer.add_tokenizer_model("gpt2" if merges else "llama")
        writer.add_token_list(words)
        if scores:
            writer.add_token_scores([float(-i) for i in range(len(words))])
        writer.add_token_types([1] * len(words))
    if merges:
        writer.add_token_merges(list(merges))
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    for key, value in (extra or {}).items():
        if isinstance(value, str):
            writer.add_string(key, value)
        elif isinstance(value, bool):
            writer.add_bool(key, value)
        elif isinstance(value, list):
            writer.add_array(key, value)
        else:
            writer.add_key_value(key, value, _value_type(value))
    for spec in tensors:
        _add_tensor(writer, spec)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _value_type(value: Any) -> gguf.GGUFValueType:
    for numpy_type, value_type in (
        (np.uint8, gguf.GGUFValueType.UINT8),
        (np.int8, gguf.GGUFValueType.INT8),
        (np.uint16, gguf.GGUFValueType.UINT16),
        (np.int16, gguf.GGUFValueType.INT16),
        (np.uint32, gguf.GGUFValueType.UINT32),
        (np.uint64, gguf.GGUFValueType.UINT64),
        (np.int64, gguf.GGUFValueType.INT64),
        (np.float64, gguf.GGUFValueType.FLOAT64),
        (float, gguf.GGUFValueType.FLOAT32),
    ):
        if isinstance(value, numpy_type):
            return value_type
    return gguf.GGUFValueType.INT32


def _add_tensor(writer: gguf.GGUFWriter, spec: TensorSpec) -> None:
    if spec.ggml_type == F32:
        writer.add_tensor(spec.name, np.zeros(spec.shape, dtype=np.float32))
        return
    if spec.ggml_type == F16:
        writer.add_tensor(spec.name, np.zeros(spec.shape, dtype=np.float16))
        return
    quant = gguf.GGMLQuantizationType(spec.ggml_type)
    block, type_size = gguf.GGML_QUANT_SIZES[quant]
    row_bytes = spec.shape[-1] // block * type_size
    data = np.zeros((*spec.shape[:-1], row_bytes), dtype=np.uint8)
    writer.add_tensor(spec.name, data, raw_dtype=quant)
