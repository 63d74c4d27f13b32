"""A bounded GGUF header reader: bytes -> metadata, without parsing the tokenizer.

``read_header(path, max_bytes=4 MiB) -> GGUFHeader`` reads the GGUF magic, version, tensor
count, every key-value pair (scalars and strings kept; arrays of more than 64 elements skipped,
their element type and length kept as ``ArrayInfo``), then the tensor infos (names, shapes,
types) to compute ``tensor_bytes`` and, when ``general.size_label`` is absent, the parameter
count. It never reads more than ``max_bytes`` of the file (``bytes_read`` says how many it read)
and raises ``modelyard.errors.GGUFError`` with a reason a person understands for: an empty file,
not GGUF (bad magic), an unsupported version, a truncated file, a header larger than the bound, a
malformed header, an unreadable file (permission denied). Nothing else escapes it, whatever the
bytes.

How large arrays are skipped. Fixed-size arrays (scores, token types) are skipped by arithmetic.
A string array (a vocabulary, BPE merges) has no index: walking it means reading every byte, and
a real tokenizer is larger than the bound (Gemma 3: 262,144 tokens in 4.4 MB; Llama 3 and
gpt-oss merges: 5-8 MB). So only the first 16 KiB of a string array is walked; beyond that the
end is *located*: the element count is known, the density of length prefixes in a few sampled
chunks estimates where the array ends, and the bytes around that estimate are searched for
the next key-value header (or tensor info). A candidate is accepted only if the whole rest of
the header parses from it: the exact number of remaining key-values, valid tensor infos whose
offsets follow llama.cpp's layout rule, and tensor data that fits the file. If no candidate
passes, the array is walked exactly after all, within the bound.

A file cut short past the bound (a download stopped in its tokenizer) is reported truncated,
not over the bound: locating the array's end shows that the array or the rest of the header
cannot fit in the file (the sampled density puts the end past the file, or the rest of the
header parsed from a candidate end runs off the end of the file).
"""

from __future__ import annotations

import math
import os
import re
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard.catalog.names import parameters_from_size
from modelyard.errors import GGUFError

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
KEPT_ARRAY_MAX = 64  # arrays up to this length are kept in ``kv`` as lists
PER_LAYER_ARRAY_MAX = 1024  # numeric per-layer arrays (head counts...) are kept up to this
KEPT_STRING_MAX = 1024 * 1024  # a longer string value is skipped (``skipped_strings``)
DEFAULT_ALIGNMENT = 32
GGML_MAX_DIMS = 4
MAX_ARRAY_DEPTH = 8
MAX_CANDIDATES = 10_000  # candidate ends tried per file before giving up
_PLAUSIBLE_SIZE = 2**48  # an offset past this is a garbage length, not a file cut short

# llama.cpp's LLAMA_FTYPE enum (general.file_type) -> the quantization name people use.
FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    33: "Q4_0_4_4",
    34: "Q4_0_4_8",
    35: "Q4_0_8_8",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
}
_FTYPE_GUESSED = 1024  # llama.cpp ORs this in when it guessed the file type

# ggml_type -> (elements per block, bytes per block), as in ggml's type traits.
GGML_TYPE_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    9: (32, 40),  # Q8_1
    10: (256, 84),  # Q2_K
    11: (256, 110),  # Q3_K
    12: (256, 144),  # Q4_K
    13: (256, 176),  # Q5_K
    14: (256, 210),  # Q6_K
    15: (256, 292),  # Q8_K
    16: (256, 66),  # IQ2_XXS
    17: (256, 74),  # IQ2_XS
    18: (256, 98),  # IQ3_XXS
    19: (256, 50),  # IQ1_S
    20: (32, 18),  # IQ4_NL
    21: (256, 110),  # IQ3_S
    22: (256, 82),  # IQ2_S
    23: (256, 136),  # IQ4_XS
    24: (1, 1),  # I8
    25: (1, 2),  # I16
    26: (1, 4),  # I32
    27: (1, 8),  # I64
    28: (1, 8),  # F64
    29: (256, 56),  # IQ1_M
    30: (1, 2),  # BF16
    31: (32, 18),  # Q4_0_4_4 (removed from ggml, still in old files)
    32: (32, 18),  # Q4_0_4_8 (removed)
    33: (32, 18),  # Q4_0_8_8 (removed)
    34: (256, 54),  # TQ1_0
    35: (256, 66),  # TQ2_0
    36: (32, 18),  # IQ4_NL_4_4 (removed)
    37: (32, 18),  # IQ4_NL_4_8 (removed)
    38: (32, 18),  # IQ4_NL_8_8 (removed)
    39: (32, 17),  # MXFP4
    40: (64, 36),  # NVFP4
    41: (128, 18),  # Q1_0
}

# GGUF value types: struct format of the fixed-size ones; 7 bool, 8 string, 9 array.
_STRING, _ARRAY, _BOOL = 8, 9, 7
_SCALAR_FORMATS: dict[int, str] = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_INTEGER_TYPES = frozenset({0, 1, 2, 3, 4, 5, 10, 11})
_SCALAR_SIZES = {vtype: struct.calcsize("<" + fmt) for vtype, fmt in _SCALAR_FORMATS.items()}

_CHUNK = 32 * 1024  # reads are chunk-aligned; each chunk is read at most once per file
_EXACT_WALK_BYTES = 16 * 1024  # string arrays are walked exactly this far, then located
_SAMPLE_STRIDE = 8  # density is sampled in one chunk of every this many
_SEARCH_WINDOW = 64 * 1024  # half-width of each search window around the estimated end
_ZERO_RUN = b"\x00" * 6  # the high bytes of every length prefix under 64 KiB
# A key-value header or tensor info as it looks after a string array: a length prefix under 256
# (one byte and seven zeros), a dotted ASCII key or tensor name, a value type / dim count < 13.
# The zeros are spelled out: as a literal prefix they let the regex engine skip ahead fast.
_HEADER_LIKE = re.compile(
    rb"\x00\x00\x00\x00\x00\x00\x00([A-Za-z][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)+)"
    rb"[\x00-\x0c]\x00\x00\x00"
)


@dataclass(frozen=True)
class ArrayInfo:
    """An array key-value that was skipped rather than read."""

    element_type: int
    length: int


@dataclass(frozen=True)
class GGUFHeader:
    """What a GGUF file's header says. Every metadata field is None when the key is absent."""

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
    tensor_bytes: int  # sum of the tensors' data sizes (tensors of unknown type count 0)
    split_count: int | None  # split.count, for split models
    split_no: int | None  # split.no (0-based)
    bytes_read: int = 0
    tensor_names: tuple[str, ...] = field(default=(), repr=False)
    data_offset: int = 0  # where the tensor data starts
    skipped_strings: dict[str, int] = field(default_factory=dict)  # key -> length, over 1 MiB
    sliding_window: int | None = None  # {arch}.attention.sliding_window: span of the SWA layers


def read_header(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> GGUFHeader:
    """Read the header of the GGUF file at ``path``, reading at most ``max_bytes`` of it.

    Blocks on file I/O only. Raises GGUFError (and nothing else) when the file cannot be read
    or is not a whole, well-formed GGUF; its message says why in a few words.
    """
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except PermissionError:
        raise GGUFError("permission denied") from None
    except OSError as error:
        raise GGUFError(f"cannot open: {error.strerror or error}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise GGUFError("not a regular file")
        source = _Source(fd, info.st_size, max_bytes)
        parser = _Parser(source)
        try:
            return parser.header()
        except _Truncated as error:
            raise GGUFError(_truncated(error.needed, source.size)) from None
        except _OverBound:
            # A header cut short past the bound cannot be told from a long one by reading;
            # but when the end of a string array was being located, the file's own layout
            # said where it ends, and that was past the end of the file.
            if parser.cut_short is not None:
                raise GGUFError(parser.cut_short) from None
            raise GGUFError(
                f"header larger than the {_describe_bytes(max_bytes)} read bound"
            ) from None
        except _Malformed as error:
            raise GGUFError(f"malformed header: {error}") from None
        except _GaveUp:
            raise GGUFError("malformed header: the end of a string array cannot be found") from None
        except PermissionError:
            raise GGUFError("permission denied") from None
        except OSError as error:
            raise GGUFError(f"cannot read: {error.strerror or error}") from None
    finally:
        os.close(fd)


def _truncated(needed: int, size: int) -> str:
    return f"truncated: the header needs {needed:,} bytes but the file has {size:,}"


def _cut_short(size: int) -> str:
    return f"truncated: the file ends ({size:,} bytes) inside its header"


def _describe_bytes(count: int) -> str:
    if count % (1024 * 1024) == 0:
        return f"{count // (1024 * 1024)} MiB"
    return f"{count:,}-byte"


class _Malformed(Exception):
    """The bytes do not follow the GGUF layout."""


class _Truncated(Exception):
    """The header runs past the end of the file. ``whole_header``: every key-value and
    tensor info parsed and only the tensor data is missing (no stray candidate gets there)."""

    def __init__(self, needed: int, *, whole_header: bool = False) -> None:
        super().__init__(needed)
        self.needed = needed
        self.whole_header = whole_header


class _OverBound(Exception):
    """Going on would read more than the bound."""


class _GaveUp(Exception):
    """Too many candidate ends of string arrays were tried (crafted bytes)."""


class _Source:
    """Random access to one open file through chunk-aligned reads, counted and bounded.

    Each chunk is read at most once, so ``bytes_read`` is exactly the bytes taken from the file.
    ``get`` raises _Truncated past the end of the file and _OverBound past the read bound.
    """

    def __init__(self, fd: int, size: int, max_bytes: int) -> None:
        self.fd = fd
        self.size = size
        self.max_bytes = max_bytes
        self.bytes_read = 0
        self._chunks: dict[int, bytes] = {}

    def get(self, pos: int, length: int) -> bytes:
        end = pos + length
        if end > self.size:
            raise _Truncated(end)
        if length <= 0:
            return b""
        first, last = pos // _CHUNK, (end - 1) // _CHUNK
        self._load(first, last)
        if first == last:
            offset = pos - first * _CHUNK
            return self._chunks[first][offset : offset + length]
        joined = b"".join(self._chunks[index] for index in range(first, last + 1))
        offset = pos - first * _CHUNK
        return joined[offset : offset + length]

    def _load(self, first: int, last: int) -> None:
        index = first
        while index <= last:
            if index in self._chunks:
                index += 1
                continue
            run_end = index
            while run_end + 1 <= last and run_end + 1 not in self._chunks:
                run_end += 1
            start = index * _CHUNK
            stop = min((run_end + 1) * _CHUNK, self.size)
            if self.bytes_read + (stop - start) > self.max_bytes:
                raise _OverBound
            data = os.pread(self.fd, stop - start, start)
            if len(data) != stop - start:  # the file shrank while we read it
                raise _Truncated(stop)
            self.bytes_read += len(data)
            for offset in range(0, len(data), _CHUNK):
                self._chunks[index + offset // _CHUNK] = data[offset : offset + _CHUNK]
            index = run_end + 1


@dataclass(frozen=True)
class _Tensors:
    names: tuple[str, ...]
    tensor_bytes: int
    elements: int
    data_offset: int


@dataclass(frozen=True)
class _Rest:
    """What a parse from some key-value onwards found."""

    items: list[tuple[str, Any]]
    arrays: list[tuple[str, ArrayInfo]]
    skipped_strings: list[tuple[str, int]]
    tensors: _Tensors


class _Parser:
    """Parses one file's header through a _Source. Positions are absolute file offsets."""

    def __init__(self, source: _Source) -> None:
        self.source = source
        self.endian = "<"
        self.kv_count = 0
        self.tensor_count = 0
        self.candidates_tried = 0
        # Why the file looks cut short, seen while locating a string array's end; reported
        # instead of "larger than the bound" if the exact walk then hits the bound.
        self.cut_short: str | None = None

    def header(self) -> GGUFHeader:
        source = self.source
        if source.size == 0:
            raise GGUFError("empty file")
        head = source.get(0, min(source.size, 24))
        if head[:4] != GGUF_MAGIC[: len(head[:4])]:
            raise GGUFError(f"not a GGUF file (bad magic {head[:4]!r})")
        if len(head) < 24:
            raise _Truncated(24)
        version = struct.unpack_from("<I", head, 4)[0]
        if version > 0xFFFF and struct.unpack_from(">I", head, 4)[0] in SUPPORTED_VERSIONS:
            self.endian = ">"
            version = struct.unpack_from(">I", head, 4)[0]
        if version not in SUPPORTED_VERSIONS:
            raise GGUFError(f"unsupported GGUF version {version}")
        self.tensor_count, self.kv_count = struct.unpack_from(self.endian + "QQ", head, 8)
        # Each key-value takes at least 13 bytes and each tensor info at least 28.
        if 24 + 13 * self.kv_count + 28 * self.tensor_count > source.size:
            raise _Truncated(24 + 13 * self.kv_count + 28 * self.tensor_count)
        rest = self._rest(24, 0, DEFAULT_ALIGNMENT)
        return _build(version, self.tensor_count, rest, source.bytes_read)

    # -- primitives -------------------------------------------------------------------------

    def _unpack(self, fmt: str, pos: int) -> tuple[Any, int]:
        size = struct.calcsize(fmt)
        return struct.unpack(self.endian + fmt, self.source.get(pos, size))[0], pos + size

    def _u32(self, pos: int) -> tuple[int, int]:
        value, pos = self._unpack("I", pos)
        return int(value), pos

    def _u64(self, pos: int) -> tuple[int, int]:
        value, pos = self._unpack("Q", pos)
        return int(value), pos

    def _text(self, pos: int, limit: int, what: str) -> tuple[str, int]:
        length, pos = self._u64(pos)
        if length > limit:
            raise _Malformed(f"{what} of {length:,} bytes at offset {pos - 8:,}")
        try:
            return self.source.get(pos, length).decode("utf-8"), pos + length
        except UnicodeDecodeError:
            raise _Malformed(f"{what} at offset {pos - 8:,} is not UTF-8") from None

    def _string_value(self, pos: int) -> tuple[str | None, int, int]:
        """A string value: (text or None when too long to keep, its length, next position)."""
        length, pos = self._u64(pos)
        if pos + length > self.source.size:
            raise _Truncated(pos + length)
        if length > KEPT_STRING_MAX:
            return None, length, pos + length
        text = self.source.get(pos, length).decode("utf-8", errors="replace")
        return text, length, pos + length

    def _value(self, vtype: int, pos: int) -> tuple[Any, int]:
        if vtype == _STRING:
            text, _, pos = self._string_value(pos)
            return text, pos
        fmt = _SCALAR_FORMATS.get(vtype)
        if fmt is None:
            raise _Malformed(f"unknown value type {vtype} at offset {pos:,}")
        if vtype == _BOOL:
            raw, pos = self._unpack("B", pos)
            return bool(raw), pos
        value, pos = self._unpack(fmt, pos)
        return value, pos

    # -- key-values -------------------------------------------------------------------------

    def _rest(self, pos: int, index: int, alignment: int) -> _Rest:
        """Parse key-values ``index``.. and then the tensor infos, starting at ``pos``."""
        items: list[tuple[str, Any]] = []
        arrays: list[tuple[str, ArrayInfo]] = []
        skipped: list[tuple[str, int]] = []
        while index < self.kv_count:
            key, pos = self._text(pos, 65536, "key")
            vtype, pos = self._u32(pos)
            if vtype == _ARRAY:
                etype, pos = self._u32(pos)
                count, pos = self._u64(pos)
                if self._keeps(key, etype, count):
                    value, pos = self._array(etype, count, pos)
                    items.append((key, value))
                else:
                    arrays.append((key, ArrayInfo(etype, count)))
                    if etype == _STRING:
                        found = self._after_strings(pos, count, index + 1, alignment)
                        if found is not None:
                            return _Rest(
                                items + found.items,
                                arrays + found.arrays,
                                skipped + found.skipped_strings,
                                found.tensors,
                            )
                        pos = self._walk_strings(pos, count)
                    else:
                        pos = self._skip_array(etype, count, pos)
            elif vtype == _STRING:
                text, length, pos = self._string_value(pos)
                if text is None:
                    skipped.append((key, length))
                else:
                    items.append((key, text))
            else:
                value, pos = self._value(vtype, pos)
                if key == "general.alignment":
                    if not isinstance(value, int) or value <= 0 or value & (value - 1):
                        raise _Malformed(f"general.alignment {value!r} is not a power of two")
                    alignment = value
                items.append((key, value))
            index += 1
        return _Rest(items, arrays, skipped, self._tensors(pos, alignment))

    def _keeps(self, key: str, etype: int, count: int) -> bool:
        if count <= KEPT_ARRAY_MAX:
            return True
        per_layer = etype in _INTEGER_TYPES and not key.startswith("tokenizer.")
        return per_layer and count <= PER_LAYER_ARRAY_MAX

    def _array(self, etype: int, count: int, pos: int, depth: int = 0) -> tuple[list[Any], int]:
        values: list[Any] = []
        for _ in range(count):
            if etype == _ARRAY:
                inner_type, pos = self._u32(pos)
                inner_count, pos = self._u64(pos)
                _check_depth(depth + 1, pos)
                if inner_count <= KEPT_ARRAY_MAX:
                    inner, pos = self._array(inner_type, inner_count, pos, depth + 1)
                    values.append(inner)
                else:
                    values.append(ArrayInfo(inner_type, inner_count))
                    pos = self._skip_array(inner_type, inner_count, pos, depth + 1)
            else:
                value, pos = self._value(etype, pos)
                values.append(value)
        return values, pos

    def _skip_array(self, etype: int, count: int, pos: int, depth: int = 0) -> int:
        size = _SCALAR_SIZES.get(etype)
        if size is not None:
            end = pos + size * count
            if end > self.source.size:
                raise _Truncated(end)
            return end
        if etype == _STRING:
            return self._walk_strings(pos, count)
        if etype == _ARRAY:
            if pos + 12 * count > self.source.size:
                raise _Truncated(pos + 12 * count)
            for _ in range(count):
                inner_type, pos = self._u32(pos)
                inner_count, pos = self._u64(pos)
                _check_depth(depth + 1, pos)
                pos = self._skip_array(inner_type, inner_count, pos, depth + 1)
            return pos
        raise _Malformed(f"unknown array element type {etype} at offset {pos:,}")

    # -- string arrays ----------------------------------------------------------------------

    def _walk_strings(self, pos: int, count: int) -> int:
        """Step over ``count`` length-prefixed strings from ``pos`` by reading them all."""
        end, walked = self._walk_some(pos, count, self.source.size)
        if walked < count:
            raise _Truncated(end + 8)
        return end

    def _walk_some(self, pos: int, count: int, stop: int) -> tuple[int, int]:
        """Walk up to ``count`` strings lying wholly before ``stop``: (position, walked)."""
        if pos + 8 * count > self.source.size:
            raise _Truncated(pos + 8 * count)
        prefix = struct.Struct(self.endian + "Q")
        walked = 0
        while walked < count and pos + 8 <= stop:
            block = self.source.get(pos, min(stop, pos + 4 * _CHUNK) - pos)
            size = len(block)
            offset = 0
            while walked < count and offset + 8 <= size:
                step = 8 + prefix.unpack_from(block, offset)[0]
                if offset + step > size:
                    break
                offset += step
                walked += 1
            if offset == 0:  # one element longer than the block
                length, _ = self._u64(pos)
                if pos + 8 + length > stop:
                    if pos + 8 + length > self.source.size:
                        raise _Truncated(pos + 8 + length)
                    break
                offset = 8 + length
                walked += 1
            pos += offset
        return pos, walked

    def _after_strings(self, pos: int, count: int, index: int, alignment: int) -> _Rest | None:
        """Parse the rest of the header after a string array of ``count`` elements at ``pos``
        by locating the array's end; None if it cannot be located (the caller then walks it).
        """
        stop = min(self.source.size, pos + _EXACT_WALK_BYTES)
        pos, walked = self._walk_some(pos, count, stop)
        if walked == count:
            return self._rest(pos, index, alignment)
        if self.endian != "<":
            return None
        remaining = count - walked
        lower = pos + 8 * remaining
        if lower > self.source.size:
            raise _Truncated(lower)
        estimate = max(lower, self._estimate_end(pos, remaining))
        size = self.source.size
        # The array, at the density sampled, ends past the file or too near its end for the
        # rest (each key-value takes at least 13 bytes, each tensor info 28, then the data;
        # the estimate is good to a search window). A whole file has its tensor data there.
        rest = 13 * (self.kv_count - index) + 28 * self.tensor_count + _SEARCH_WINDOW
        if estimate + rest > size and self.cut_short is None:
            self.cut_short = _cut_short(size)
        for candidate in self._candidates(lower, estimate):
            self.candidates_tried += 1
            if self.candidates_tried > MAX_CANDIDATES:
                raise _GaveUp
            try:
                return self._rest(candidate, index, alignment)
            except _Truncated as error:
                self._note_cut_short(error, size)
                continue
            except _Malformed:
                continue
        return None

    def _note_cut_short(self, error: _Truncated, size: int) -> None:
        """Keep the strongest sign, from a candidate end, that the file was cut short: the
        whole header parsed and only the tensor data is missing (exact); else a parse that
        ran past the end by a file-sized amount (a stray candidate's garbage length is a
        number past 2**48)."""
        if error.whole_header:
            self.cut_short = _truncated(error.needed, size)
        elif self.cut_short is None and error.needed < _PLAUSIBLE_SIZE:
            self.cut_short = _cut_short(size)

    def _estimate_end(self, pos: int, remaining: int) -> int:
        """Where ``remaining`` strings starting at ``pos`` probably end, from the density of
        length prefixes in one chunk of every few."""
        size = self.source.size
        counted = 0.0
        index = pos // _CHUNK
        while True:
            start = max(pos, index * _CHUNK)
            stop = min(size, (index + 1) * _CHUNK)
            if stop <= start:
                return size
            sample = self.source.get(start, stop - start)
            density = max(sample.count(_ZERO_RUN), 1) / len(sample)
            span_end = min(size, (index + _SAMPLE_STRIDE) * _CHUNK)
            span = span_end - start
            if counted + density * span >= remaining or span_end >= size:
                return start + math.ceil((remaining - counted) / density)
            counted += density * span
            index += _SAMPLE_STRIDE

    def _candidates(self, lower: int, estimate: int) -> Iterator[int]:
        """Positions at or after ``lower`` that look like a key-value header or a tensor info,
        nearest to ``estimate`` first, from windows widening around it until the bound."""
        size = self.source.size
        searched_low = searched_high = min(max(lower, estimate), size)
        while searched_low > lower or searched_high < size:
            windows: list[tuple[int, int]] = []
            if searched_high < size:
                windows.append((searched_high, min(size, searched_high + _SEARCH_WINDOW)))
                searched_high = windows[-1][1]
            if searched_low > lower:
                windows.append((max(lower, searched_low - _SEARCH_WINDOW), searched_low))
                searched_low = windows[-1][0]
            found: list[int] = []
            for start, stop in windows:
                begin = max(lower - 1, start - 1)  # the length byte before the seven zeros
                end = min(size, stop + 8 + 256 + 4)  # a header starting before ``stop``
                data = self.source.get(begin, end - begin)
                for match in _HEADER_LIKE.finditer(data, 1):
                    at = begin + match.start() - 1
                    if start <= at < stop and data[match.start() - 1] == len(match.group(1)):
                        found.append(at)
            yield from sorted(found, key=lambda at: abs(at - estimate))

    # -- tensor infos -----------------------------------------------------------------------

    def _tensors(self, pos: int, alignment: int) -> _Tensors:
        names: list[str] = []
        total_bytes = 0
        elements_total = 0
        expected: int | None = 0  # llama.cpp's rule: each offset is the padded running total
        last_end = 0
        for _ in range(self.tensor_count):
            name, pos = self._text(pos, 256, "tensor name")
            n_dims, pos = self._u32(pos)
            if not 1 <= n_dims <= GGML_MAX_DIMS:
                raise _Malformed(f"tensor {name!r} has {n_dims} dimensions")
            dims = struct.unpack(self.endian + "Q" * n_dims, self.source.get(pos, 8 * n_dims))
            pos += 8 * n_dims
            ggml_type, pos = self._u32(pos)
            offset, pos = self._u64(pos)
            elements = math.prod(dims)
            if offset % alignment or (expected is not None and offset != expected):
                raise _Malformed(f"tensor {name!r} has offset {offset:,}")
            sizes = GGML_TYPE_SIZES.get(ggml_type)
            if sizes is None:
                if ggml_type > 1024:
                    raise _Malformed(f"tensor {name!r} has type {ggml_type}")
                expected = None
                nbytes = 0
            else:
                block, type_size = sizes
                if dims[0] % block:
                    raise _Malformed(f"tensor {name!r} rows are not whole blocks")
                nbytes = elements // block * type_size
                if expected is not None:
                    expected = offset + -(-nbytes // alignment) * alignment
            names.append(name)
            total_bytes += nbytes
            elements_total += elements
            last_end = max(last_end, offset + nbytes)
        data_offset = -(-pos // alignment) * alignment
        if self.tensor_count and data_offset + last_end > self.source.size:
            raise _Truncated(data_offset + last_end, whole_header=True)
        return _Tensors(tuple(names), total_bytes, elements_total, data_offset)


def _check_depth(depth: int, pos: int) -> None:
    # Arrays nest without limit in the format; without this, crafted bytes reach Python's
    # recursion limit.
    if depth > MAX_ARRAY_DEPTH:
        raise _Malformed(f"arrays nested more than {MAX_ARRAY_DEPTH} deep at offset {pos:,}")


def _build(version: int, tensor_count: int, rest: _Rest, bytes_read: int) -> GGUFHeader:
    kv = dict(rest.items)
    arrays = dict(rest.arrays)
    arch = _str(kv.get("general.architecture"))
    prefix = f"{arch}." if arch else "\x00"
    size_label = _str(kv.get("general.size_label"))
    parameters: int | None = None
    if size_label is not None:
        total, _ = parameters_from_size(size_label)
        parameters = None if total is None else round(total * 1e9)
    if parameters is None and rest.tensors.elements:
        parameters = rest.tensors.elements
    file_type = _int(kv.get("general.file_type"))
    tokens = kv.get("tokenizer.ggml.tokens")
    vocab_size = (
        arrays["tokenizer.ggml.tokens"].length if "tokenizer.ggml.tokens" in arrays else None
    )
    if vocab_size is None and isinstance(tokens, list):
        vocab_size = len(tokens)
    return GGUFHeader(
        version=version,
        tensor_count=tensor_count,
        kv=kv,
        arrays=arrays,
        architecture=arch,
        name=_str(kv.get("general.name")),
        basename=_str(kv.get("general.basename")),
        size_label=size_label,
        finetune=_str(kv.get("general.finetune")),
        license=_str(kv.get("general.license")),
        context_length=_int(kv.get(prefix + "context_length")),
        block_count=_int(kv.get(prefix + "block_count")),
        embedding_length=_int(kv.get(prefix + "embedding_length")),
        head_count=_int(kv.get(prefix + "attention.head_count")),
        head_count_kv=_int(kv.get(prefix + "attention.head_count_kv")),
        key_length=_int(kv.get(prefix + "attention.key_length")),
        value_length=_int(kv.get(prefix + "attention.value_length")),
        expert_count=_int(kv.get(prefix + "expert_count")),
        expert_used_count=_int(kv.get(prefix + "expert_used_count")),
        file_type=file_type,
        quantization=None if file_type is None else FILE_TYPES.get(file_type & ~_FTYPE_GUESSED),
        pooling_type=_int(kv.get(prefix + "pooling_type")),
        vision=_has_vision(kv, arrays, arch),
        chat_template=_str(kv.get("tokenizer.chat_template")),
        vocab_size=vocab_size,
        parameters=parameters,
        tensor_bytes=rest.tensors.tensor_bytes,
        split_count=_int(kv.get("split.count")),
        split_no=_int(kv.get("split.no")),
        bytes_read=bytes_read,
        tensor_names=rest.tensors.names,
        data_offset=rest.tensors.data_offset,
        skipped_strings=dict(rest.skipped_strings),
        sliding_window=_int(kv.get(prefix + "attention.sliding_window")),
    )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    """An integer value; for a per-layer array (head_count_kv...), its largest element."""
    if isinstance(value, list):
        numbers = [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
        return max(numbers) if numbers else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _has_vision(kv: dict[str, Any], arrays: dict[str, ArrayInfo], arch: str | None) -> bool:
    encoder = kv.get("clip.has_vision_encoder")
    if isinstance(encoder, bool):
        return encoder
    keys = [*kv, *arrays]
    vision_prefixes = ("clip.vision.", f"{arch}.vision.") if arch else ("clip.vision.",)
    if any(key.startswith(vision_prefixes) for key in keys):
        return True
    return arch == "clip" or any(key.startswith("clip.") for key in keys)
