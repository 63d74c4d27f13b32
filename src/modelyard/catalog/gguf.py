"""A bounded GGUF header reader: bytes -> metadata, without parsing the tokenizer.

INTERFACE STUB: to be implemented. Contract:

- ``read_header(path, max_bytes=4 MiB) -> GGUFHeader``: read the GGUF magic, version, tensor
  count, key-value pairs (scalars and strings kept; arrays of more than 64 elements skipped by
  seeking past them without reading: their length and element type are kept as
  ``ArrayInfo``), then the tensor infos (names, shapes, types) to compute ``tensor_bytes`` and,
  when needed, the parameter count. Never reads more than ``max_bytes`` of the file
  (``bytes_read`` says how many it did read). Raises ``modelyard.errors.GGUFError`` with a reason
  a person understands for: empty file, not GGUF (bad magic), unsupported version, truncated,
  header larger than the bound, unreadable (permission denied).
- Every field is Optional: a GGUF may lack any key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ArrayInfo:
    """An array key-value that was skipped rather than read."""

    element_type: int
    length: int


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    tensor_count: int
    kv: dict[str, Any]  # scalar and string values, small arrays as lists
    arrays: dict[str, ArrayInfo]  # large arrays skipped: key -> type and length
    architecture: str | None
    name: str | None
    basename: str | None
    size_label: str | None
    finetune: str | None
    license: str | None
    context_length: int | None
    block_count: int | None
    embedding_length: int | None
    head_count: int | None
    head_count_kv: int | None
    key_length: int | None
    value_length: int | None
    expert_count: int | None
    expert_used_count: int | None
    file_type: int | None
    quantization: str | None  # "Q4_K_M", "IQ4_XS", "F16"...: from general.file_type
    pooling_type: int | None
    vision: bool  # clip/vision keys present (a projector or a VLM)
    chat_template: str | None
    vocab_size: int | None  # length of tokenizer.ggml.tokens
    parameters: int | None  # from size_label, else the tensor shapes
    tensor_bytes: int  # sum of the tensors' data sizes
    split_count: int | None  # split.count, for split models
    split_no: int | None  # split.no (0-based)
    bytes_read: int = 0
    tensor_names: tuple[str, ...] = field(default=(), repr=False)


def read_header(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> GGUFHeader:
    raise NotImplementedError
