"""Convert a BERT sentence-embedding model (Hugging Face layout) to a GGUF llama-server serves.

Input: a folder (or its files) with ``config.json``, ``model.safetensors``, ``tokenizer.json``
(WordPiece) and, for sentence-transformers models, ``1_Pooling/config.json``. Output: one GGUF
file, architecture ``bert``, 2-D weights in F16 and the rest in F32, the WordPiece vocabulary in
llama.cpp's "phantom space" form (a word-initial piece gets a leading ``▁``, a continuation
loses its ``##``), and the pooling the model was trained with (mean, for all-MiniLM-L6-v2).
The tensor names are llama.cpp's for BERT (``token_embd``, ``blk.N.attn_q``...).

safetensors is read by hand (an 8-byte header length, a JSON header, raw little-endian data):
one ``numpy.frombuffer`` per tensor, no torch. ``reference_embedding`` runs the same model in
numpy, so a test can check what llama-server computes from the converted file.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]

_DTYPES: dict[str, type[np.generic] | None] = {"F32": np.float32, "F16": np.float16}
_SKIPPED = ("position_ids",)  # integer buffers some exports carry; not weights
_POOLING = {"mean": 1, "cls": 2}
_KEPT_F32 = ("position_embd.", "token_types.")
_LAYER = {
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}
_EMBEDDINGS = {
    "embeddings.word_embeddings": "token_embd",
    "embeddings.position_embeddings": "position_embd",
    "embeddings.token_type_embeddings": "token_types",
    "embeddings.LayerNorm": "token_embd_norm",
}


def read_safetensors(path: Path) -> dict[str, Array]:
    """Every tensor of a safetensors file, as float32 arrays. Raises ValueError when the file
    is not safetensors or holds a type this reader does not know."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    base = 8 + length
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or name.endswith(_SKIPPED):
            continue
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path.name}: tensor {name} has unsupported type {info['dtype']}")
        start, end = info["data_offsets"]
        count = (end - start) // np.dtype(dtype).itemsize
        raw = np.frombuffer(data, dtype=dtype, count=count, offset=base + start)
        tensors[name] = raw.reshape(info["shape"]).astype(np.float32)
    return tensors


def gguf_tensors(tensors: Mapping[str, Array], layers: int) -> dict[str, Array]:
    """HF BERT names -> llama.cpp's; a leading ``bert.`` is dropped, the pooler is skipped."""
    out = {}
    for name, value in tensors.items():
        plain = name.removeprefix("bert.")
        stem, _, kind = plain.rpartition(".")
        if stem in _EMBEDDINGS:
            out[f"{_EMBEDDINGS[stem]}.{kind}"] = value
            continue
        if plain.startswith("pooler.") or plain.endswith("position_ids"):
            continue
        parts = stem.split(".")
        if len(parts) < 4 or parts[:2] != ["encoder", "layer"]:
            raise ValueError(f"unexpected tensor {name}")
        index, rest = int(parts[2]), ".".join(parts[3:])
        if rest not in _LAYER or not 0 <= index < layers:
            raise ValueError(f"unexpected tensor {name}")
        out[f"blk.{index}.{_LAYER[rest]}.{kind}"] = value
    return out


def phantom(token: str) -> str:
    """llama.cpp's WordPiece form: ``##ing`` -> ``ing``, ``play`` -> ``▁play``, ``[CLS]`` kept."""
    if token.startswith("[") and token.endswith("]"):
        return token
    if token.startswith("##"):
        return token[2:]
    return "\u2581" + token


def convert(folder: Path, target: Path, *, name: str, license_: str | None = None) -> None:
    """Write the GGUF of the BERT model in ``folder`` to ``target``. Raises ValueError (or
    KeyError, OSError) for a folder that is not such a model."""
    import gguf  # the writer; only needed at set-up

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    if tokenizer["model"]["type"] != "WordPiece":
        raise ValueError("tokenizer.json is not a WordPiece tokenizer")
    vocab: dict[str, int] = tokenizer["model"]["vocab"]
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
    special = {t["content"] for t in tokenizer.get("added_tokens", []) if t.get("special")}
    layers = int(config["num_hidden_layers"])
    weights = gguf_tensors(read_safetensors(folder / "model.safetensors"), layers)

    writer = gguf.GGUFWriter(str(target), "bert")
    writer.add_name(name)
    if license_:
        writer.add_license(license_)
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_block_count(layers)
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_layer_norm_eps(float(config["layer_norm_eps"]))
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType(_pooling(folder)))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([phantom(t) for t in tokens])
    control, normal = gguf.TokenType.CONTROL, gguf.TokenType.NORMAL
    writer.add_token_types([control if t in special else normal for t in tokens])
    writer.add_token_type_count(int(config.get("type_vocab_size", 2)))
    for setter, token in (
        (writer.add_bos_token_id, "[CLS]"),
        (writer.add_eos_token_id, "[SEP]"),
        (writer.add_sep_token_id, "[SEP]"),
        (writer.add_unk_token_id, "[UNK]"),
        (writer.add_pad_token_id, "[PAD]"),
        (writer.add_mask_token_id, "[MASK]"),
    ):
        setter(vocab[token])
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(True)
    for tensor_name, value in sorted(weights.items()):
        # llama.cpp adds these two to F32 activations, and its add takes no F16 operand.
        half = value.ndim == 2 and not tensor_name.startswith(_KEPT_F32)
        data = value.astype(np.float16) if half else value
        writer.add_tensor(tensor_name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _pooling(folder: Path) -> int:
    path = folder / "1_Pooling" / "config.json"
    if not path.is_file():
        return _POOLING["cls"]
    pooling = json.loads(path.read_text(encoding="utf-8"))
    return _POOLING["mean"] if pooling.get("pooling_mode_mean_tokens") else _POOLING["cls"]


# -- the reference: the same model in numpy ---------------------------------------------------


def reference_embedding(
    tensors: Mapping[str, Array], config: Mapping[str, Any], ids: Sequence[int]
) -> Array:
    """The mean-pooled, L2-normalised embedding of token ``ids`` ([CLS] ... [SEP]) by the HF
    weights ``tensors``: BERT's forward pass in float32, one sequence, no padding."""
    t = {k.removeprefix("bert."): v for k, v in tensors.items()}
    eps = float(config["layer_norm_eps"])
    heads = int(config["num_attention_heads"])
    n = len(ids)
    x = (
        t["embeddings.word_embeddings.weight"][list(ids)]
        + t["embeddings.position_embeddings.weight"][:n]
        + t["embeddings.token_type_embeddings.weight"][0]
    )
    x = _norm(x, t, "embeddings.LayerNorm", eps)
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        q, k, v = (_linear(x, t, p + f"attention.self.{w}") for w in ("query", "key", "value"))
        d = q.shape[1] // heads
        qh, kh, vh = (m.reshape(n, heads, d).transpose(1, 0, 2) for m in (q, k, v))
        scores = qh @ kh.transpose(0, 2, 1) / np.sqrt(d)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        attn = (scores / scores.sum(axis=-1, keepdims=True)) @ vh
        merged = attn.transpose(1, 0, 2).reshape(n, heads * d)
        x = _norm(
            x + _linear(merged, t, p + "attention.output.dense"),
            t,
            p + "attention.output.LayerNorm",
            eps,
        )
        up = _gelu(_linear(x, t, p + "intermediate.dense"))
        x = _norm(x + _linear(up, t, p + "output.dense"), t, p + "output.LayerNorm", eps)
    pooled = x.mean(axis=0)
    result: Array = (pooled / np.linalg.norm(pooled)).astype(np.float32)
    return result


def _linear(x: Array, t: Mapping[str, Array], name: str) -> Array:
    out: Array = x @ t[f"{name}.weight"].T + t[f"{name}.bias"]
    return out


def _norm(x: Array, t: Mapping[str, Array], name: str, eps: float) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out: Array = (x - mean) / np.sqrt(var + eps) * t[f"{name}.weight"] + t[f"{name}.bias"]
    return out


def _gelu(x: Array) -> Array:
    from math import erf, sqrt

    erf_v = np.vectorize(erf, otypes=[np.float32])
    out: Array = 0.5 * x * (1.0 + erf_v(x / sqrt(2.0)))
    return out
