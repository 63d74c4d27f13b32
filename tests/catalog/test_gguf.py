"""The bounded GGUF header reader, against the real Gemma file and the ``gguf`` package."""

from __future__ import annotations

import contextlib
import os
import random
import struct
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

from modelyard.catalog.gguf import (
    DEFAULT_MAX_BYTES,
    FILE_TYPES,
    GGML_TYPE_SIZES,
    GGUFHeader,
    read_header,
)
from modelyard.errors import GGUFError
from tests.support.ggufs import (
    BF16,
    F16,
    F32,
    IQ4_XS,
    MXFP4,
    Q4_0,
    Q4_K,
    Q6_K,
    Q8_0,
    tensor,
    tensor_bytes,
    tensor_elements,
    write_gguf,
)

# Big enough that only the first 64 KiB of the vocabulary is walked and its end is located.
LARGE_VOCAB = 6000
MERGES = [f"\u0120t{i % 97} e{i}" for i in range(4000)]
TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_real_gemma_file_is_read_right(gemma_path: Path) -> None:
    header = read_header(gemma_path)

    assert header.architecture == "gemma3"
    assert header.parameters is not None and 0.25e9 <= header.parameters <= 0.29e9
    assert (header.quantization, header.file_type) == ("Q4_K_M", 15)
    assert (header.context_length, header.block_count) == (32768, 18)
    assert (header.embedding_length, header.head_count, header.head_count_kv) == (640, 4, 1)
    assert (header.key_length, header.value_length) == (256, 256)
    assert (header.name, header.basename, header.size_label) == ("Gemma 3 270m", "gemma-3", "270M")
    assert header.vocab_size == 262144
    assert header.tensor_count == len(header.tensor_names) == 236
    assert header.data_offset + header.tensor_bytes <= gemma_path.stat().st_size
    assert header.vision is False and header.pooling_type is None
    # The vocabulary alone is 4.4 MB: it is located, not read.
    assert 0 < header.bytes_read <= DEFAULT_MAX_BYTES


def reader_fields(path: Path) -> tuple[dict[str, Any], list[tuple[str, int, int]], int]:
    """Key-values (GGUF.* excluded), tensors (name, bytes, elements), data offset, by GGUFReader."""
    reader = gguf.GGUFReader(path)
    fields = {
        key: (field.types, field.contents())
        for key, field in reader.fields.items()
        if not key.startswith("GGUF.")
    }
    tensors = [(t.name, int(t.n_bytes), int(t.n_elements)) for t in reader.tensors]
    return fields, tensors, int(reader.data_offset)


def flatten(value: object) -> list[object]:
    if isinstance(value, list):
        return [item for inner in value for item in flatten(inner)]
    return [value]


def assert_matches_reader(header: GGUFHeader, path: Path) -> None:
    fields, tensors, data_offset = reader_fields(path)
    assert set(header.kv) | set(header.arrays) | set(header.skipped_strings) == set(fields)
    for key, (types, contents) in fields.items():
        nested = len(types) > 2  # GGUFReader flattens arrays of arrays
        if key in header.arrays:
            assert header.arrays[key].element_type == types[1]
            assert nested or header.arrays[key].length == len(contents)
        elif key in header.skipped_strings:
            assert header.skipped_strings[key] == len(contents.encode())
        elif nested:
            assert flatten(header.kv[key]) == contents, key
        else:
            assert header.kv[key] == contents, key
    assert header.tensor_names == tuple(name for name, _, _ in tensors)
    assert header.tensor_bytes == sum(size for _, size, _ in tensors)
    assert header.data_offset == data_offset
    assert header.tensor_count == len(tensors)


CASES: dict[str, dict[str, Any]] = {
    "small vocabulary, walked": {"name": "Small", "size_label": "1B", "vocab_size": 40},
    "large vocabulary and merges, located": {
        "name": "Large",
        "vocab_size": LARGE_VOCAB,
        "merges": MERGES,
        "chat_template": TEMPLATE,
    },
    "vocabulary as the last key, before the tensor infos": {
        "scores": False,
        "file_type": None,
        "vocab_size": 0,
        "extra": {"tokenizer.ggml.tokens": [f"piece.{i}" for i in range(LARGE_VOCAB)]},
    },
    "every value type, nested arrays, alignment 64": {
        "alignment": 64,
        "extra": {
            "test.u8": np.uint8(200),
            "test.i8": np.int8(-5),
            "test.u16": np.uint16(60000),
            "test.i16": np.int16(-300),
            "test.u64": np.uint64(2**40),
            "test.i64": np.int64(-(2**40)),
            "test.f64": np.float64(0.125),
            "test.f32": 1.5,
            "test.bool": True,
            "test.nested": [[1, 2], [3]],
            "test.long_nested": [[i] for i in range(100)],
            "test.long_floats": [0.5] * 5000,
        },
    },
    "per-layer head counts and many tensor types": {
        "head_count_kv": [8] * 80,
        "tensors": [
            tensor("a", (3, 32), F32),
            tensor("b", (2, 64), F16),
            tensor("c", (2, 32), Q4_0),
            tensor("d", (1, 32), Q8_0),
            tensor("e", (2, 256), Q4_K),
            tensor("f", (1, 256), Q6_K),
            tensor("g", (1, 256), IQ4_XS),
            tensor("h", (5, 32), BF16),
            tensor("i", (1, 64), MXFP4),
            tensor("j", (2, 3, 4, 32), F32),
        ],
    },
    "no tensors": {"tensors": [], "vocab_size": LARGE_VOCAB},
}


@pytest.mark.parametrize("fields", CASES.values(), ids=list(CASES))
def test_fields_and_tensors_match_gguf_reader(tmp_path: Path, fields: dict[str, Any]) -> None:
    path = write_gguf(tmp_path / "m.gguf", **fields)

    header = read_header(path)

    assert_matches_reader(header, path)
    assert header.bytes_read <= path.stat().st_size


def test_a_located_vocabulary_is_not_read_whole(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", vocab_size=60000, merges=MERGES * 10, scores=False)

    header = read_header(path)

    assert (header.vocab_size, header.arrays["tokenizer.ggml.merges"].length) == (60000, 40000)
    assert header.bytes_read < path.stat().st_size // 2


def test_named_fields(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "m.gguf",
        arch="qwen3moe",
        name="Qwen3 30B A3B Instruct 2507",
        basename="Qwen3",
        size_label="30B-A3B",
        finetune="Instruct-2507",
        license="apache-2.0",
        file_type=30,
        context_length=262144,
        block_count=48,
        embedding_length=2048,
        head_count=32,
        head_count_kv=[4, 4, 2],
        key_length=128,
        value_length=128,
        expert_count=128,
        expert_used_count=8,
        chat_template=TEMPLATE,
        vocab_size=100,
    )

    header = read_header(path)

    assert header.architecture == "qwen3moe"
    assert (header.name, header.basename, header.finetune, header.license) == (
        "Qwen3 30B A3B Instruct 2507",
        "Qwen3",
        "Instruct-2507",
        "apache-2.0",
    )
    assert (header.size_label, header.parameters) == ("30B-A3B", 30_000_000_000)
    assert (header.file_type, header.quantization) == (30, "IQ4_XS")
    assert (header.context_length, header.block_count, header.embedding_length) == (
        262144,
        48,
        2048,
    )
    assert (header.head_count, header.head_count_kv) == (32, 4)  # the largest per layer
    assert (header.key_length, header.value_length) == (128, 128)
    assert (header.expert_count, header.expert_used_count) == (128, 8)
    assert header.chat_template == TEMPLATE
    assert (header.vocab_size, header.version) == (100, 3)
    assert header.vision is False
    assert (header.split_count, header.split_no, header.pooling_type) == (None, None, None)


@pytest.mark.parametrize(
    ("label", "parameters"),
    [("270M", 270e6), ("0.5B", 0.5e9), ("7B", 7e9), ("8x7B", 56e9), ("30B-A3B", 30e9)],
)
def test_parameters_from_the_size_label(tmp_path: Path, label: str, parameters: float) -> None:
    header = read_header(write_gguf(tmp_path / "m.gguf", size_label=label))
    assert header.parameters == round(parameters)


def test_parameters_from_tensor_shapes_without_a_size_label(tmp_path: Path) -> None:
    specs = [tensor("token_embd.weight", (10, 32), F16), tensor("w", (4, 256), Q4_K)]
    header = read_header(write_gguf(tmp_path / "m.gguf", tensors=specs))
    assert header.parameters == tensor_elements(specs) == 10 * 32 + 4 * 256
    assert header.tensor_bytes == tensor_bytes(specs) == 10 * 32 * 2 + 4 * 144


def test_vision_split_and_pooling_keys(tmp_path: Path) -> None:
    projector = read_header(write_gguf(tmp_path / "p.gguf", arch="clip", clip=True))
    vlm = read_header(write_gguf(tmp_path / "v.gguf", arch="gemma3", vision_keys=True))
    audio = read_header(
        write_gguf(tmp_path / "a.gguf", arch="clip", extra={"clip.has_vision_encoder": False})
    )
    part = read_header(write_gguf(tmp_path / "s.gguf", split_count=3, split_no=1))
    embedder = read_header(write_gguf(tmp_path / "e.gguf", arch="bert", pooling_type=2))
    assert (projector.vision, vlm.vision, audio.vision, part.vision) == (True, True, False, False)
    assert (part.split_count, part.split_no) == (3, 1)
    assert embedder.pooling_type == 2


def test_big_endian_file(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", big_endian=True, vocab_size=LARGE_VOCAB, size_label="1B")
    header = read_header(path)
    assert (header.architecture, header.context_length, header.vocab_size) == (
        "llama",
        4096,
        LARGE_VOCAB,
    )
    assert header.quantization == "Q4_K_M"


def test_a_huge_string_is_skipped_not_kept(tmp_path: Path) -> None:
    template = "x" * (1024 * 1024 + 1)
    header = read_header(write_gguf(tmp_path / "m.gguf", chat_template=template))
    assert header.chat_template is None
    assert header.skipped_strings == {"tokenizer.chat_template": len(template)}
    assert header.bytes_read < 256 * 1024


def test_file_type_names_agree_with_llama_cpp() -> None:
    names = {
        member.value: member.name.removeprefix("MOSTLY_").removeprefix("ALL_")
        for member in gguf.LlamaFileType
        if member.name != "GUESSED"
    }
    for value, name in FILE_TYPES.items():
        if value in names:  # 33-35 are gone from the enum but remain in old files
            assert names[value] == name
    assert set(names) <= set(FILE_TYPES)


def test_tensor_type_sizes_agree_with_ggml() -> None:
    for quant_type, sizes in gguf.GGML_QUANT_SIZES.items():
        assert GGML_TYPE_SIZES[int(quant_type)] == sizes, quant_type.name


# -- errors -----------------------------------------------------------------------------------


def reason(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    with pytest.raises(GGUFError) as caught:
        read_header(path, max_bytes)
    return str(caught.value)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.gguf").write_bytes(b"")
    assert reason(tmp_path / "e.gguf") == "empty file"


def test_not_gguf(tmp_path: Path) -> None:
    (tmp_path / "t.gguf").write_text("this is not a model\n")
    assert reason(tmp_path / "t.gguf") == "not a GGUF file (bad magic b'this')"


def test_unsupported_version(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf")
    data = bytearray(path.read_bytes())
    data[4:8] = (1).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert reason(path) == "unsupported GGUF version 1"


def test_truncated_in_the_header(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", chat_template=TEMPLATE)
    whole = path.read_bytes()
    path.write_bytes(whole[:300])
    assert reason(path).startswith("truncated: the header needs ")
    assert reason(path).endswith("but the file has 300")


def test_truncated_in_the_tensor_data(tmp_path: Path) -> None:
    """A download cut short keeps a whole header: the missing tensor data must still show."""
    path = write_gguf(tmp_path / "m.gguf", tensors=[tensor("w", (64, 256), F32)])
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 100])
    assert reason(path).startswith("truncated")


def test_header_larger_than_the_bound(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", chat_template="y" * 200_000)
    assert reason(path, max_bytes=64 * 1024) == "header larger than the 65,536-byte read bound"
    assert read_header(path).chat_template == "y" * 200_000


def test_unreadable_paths(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.gguf")
    (tmp_path / "dir.gguf").mkdir()
    assert reason(tmp_path / "pipe.gguf") == "not a regular file"
    assert reason(tmp_path / "dir.gguf") == "not a regular file"
    assert reason(tmp_path / "missing.gguf").startswith("cannot open: ")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf")
    path.chmod(0)
    assert reason(path) == "permission denied"


# -- arbitrary bytes --------------------------------------------------------------------------


def read_or_refuse(path: Path) -> None:
    """Reading either succeeds or raises GGUFError: no other exception escapes."""
    with contextlib.suppress(GGUFError):
        read_header(path)


def test_truncated_at_many_offsets_raises_only_gguf_errors(tmp_path: Path) -> None:
    source = write_gguf(
        tmp_path / "m.gguf", vocab_size=LARGE_VOCAB, merges=MERGES, chat_template=TEMPLATE
    )
    whole = source.read_bytes()
    cut = tmp_path / "cut.gguf"
    randomness = random.Random(20240601)
    offsets = {*range(0, 600), *randomness.sample(range(len(whole)), 150)}
    for offset in sorted(offsets):
        cut.write_bytes(whole[:offset])
        with pytest.raises(GGUFError):
            read_header(cut)


def test_random_bytes_raise_only_gguf_errors(tmp_path: Path) -> None:
    source = write_gguf(tmp_path / "m.gguf", vocab_size=LARGE_VOCAB, chat_template=TEMPLATE)
    whole = source.read_bytes()
    path = tmp_path / "fuzz.gguf"
    randomness = random.Random(7)
    for _ in range(150):
        path.write_bytes(b"GGUF" + randomness.randbytes(randomness.randrange(0, 4096)))
        read_or_refuse(path)
    header_end = read_header(source).data_offset
    for _ in range(300):
        data = bytearray(whole)
        for _ in range(randomness.randrange(1, 4)):
            data[randomness.randrange(header_end)] = randomness.randrange(256)
        path.write_bytes(bytes(data))
        read_or_refuse(path)


def test_deeply_nested_arrays_are_refused(tmp_path: Path) -> None:
    """Arrays nest without limit in the format: crafted nesting must not hit the recursion
    limit (a RecursionError escaped before the depth check)."""
    key = b"test.deep"
    nested = struct.pack("<IQ", 9, 1) * 5000 + struct.pack("<IQ", 0, 0)
    body = struct.pack("<Q", len(key)) + key + struct.pack("<I", 9) + nested
    path = tmp_path / "deep.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + body)
    assert reason(path).startswith("malformed header: arrays nested more than 8 deep")
