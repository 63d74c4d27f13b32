"""The benchmark's model tree: synthetic GGUFs with real-sized tokenizers, plus the Gemma file.

``build_tree(root)`` writes it once; every section of the benchmark reads the same tree.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.support.gemma import assemble_gemma
from tests.support.ggufs import F16, F32, Q4_K, Q6_K, tensor, write_gguf

VOCAB_SIZE = 150_000
NAME_PLACEHOLDER = "Bench Model 000"
CHAT_TEMPLATE = (
    "{%- if tools %}{{- '<|im_start|>system\\n# Tools\\n' }}{%- for tool in tools %}"
    "{{- tool | tojson }}{%- endfor %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content"
    " + '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
) * 4
TENSORS = (
    tensor("token_embd.weight", (16, 256), Q6_K),
    tensor("blk.0.attn_q.weight", (16, 256), Q4_K),
    tensor("blk.0.ffn_up.weight", (8, 64), F16),
    tensor("output_norm.weight", (256,), F32),
)


@dataclass(frozen=True)
class Tree:
    """The files of one benchmark run."""

    root: Path
    synthetic: tuple[Path, ...]  # 200 files, four tokenizer shapes in turn
    gemma: Path


def vocabulary(randomness: random.Random, size: int) -> list[str]:
    """Token strings shaped like a BPE vocabulary: 256 byte tokens, then pieces that grow
    longer (``Ġ`` word starts, suffixes, digits, CJK), 7 bytes each on average."""
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    tokens = [f"<0x{i:02X}>" for i in range(256)]
    while len(tokens) < size:
        roll = randomness.random()
        length = 1 + min(int(randomness.expovariate(1 / 4.5)), 18)
        word = "".join(randomness.choices(letters, k=length))
        if roll < 0.55:
            tokens.append("\u0120" + word)
        elif roll < 0.85:
            tokens.append(word)
        elif roll < 0.93:
            tokens.append(str(randomness.randrange(1000)))
        else:
            tokens.append("".join(chr(0x4E00 + randomness.randrange(20000)) for _ in range(2)))
    return tokens[:size]


def merges(tokens: list[str], randomness: random.Random) -> list[str]:
    """BPE merge rules ("left right"), one per token beyond the byte tokens."""
    rules = []
    for token in tokens[256:]:
        cut = randomness.randrange(1, len(token)) if len(token) > 1 else 1
        rules.append(f"{token[:cut]} {token[cut:] or token}")
    return rules


def build_tree(root: Path, count: int = 200) -> Tree:
    """Write ``count`` synthetic GGUFs and the Gemma file under ``root``.

    Four base files are written with GGUFWriter, each a 150,000-token vocabulary: two BPE
    (tokens, token types, 149,744 merges, as Qwen and Llama 3 ship) and two SentencePiece
    (tokens, scores, token types, as Gemma and Llama 2 ship), all with a chat template and a few
    quantized tensors. The ``count`` files are copies of them in turn, each with its own
    ``general.name`` (patched in place, same length), in a few nested folders.
    """
    randomness = random.Random(2024)
    bases = root / "bases"
    bases.mkdir(parents=True)
    base_files = []
    for index, (arch, bpe) in enumerate(
        (("qwen2", True), ("llama", True), ("gemma3", False), ("llama", False))
    ):
        tokens = vocabulary(randomness, VOCAB_SIZE)
        base_files.append(
            write_gguf(
                bases / f"base-{index}.gguf",
                arch=arch,
                name=NAME_PLACEHOLDER,
                size_label="7B",
                context_length=32768,
                block_count=28,
                chat_template=CHAT_TEMPLATE,
                tokens=tokens,
                merges=merges(tokens, randomness) if bpe else None,
                scores=not bpe,
                tensors=TENSORS,
            )
        )
    contents = [path.read_bytes() for path in base_files]
    synthetic = []
    for number in range(count):
        data = contents[number % len(contents)]
        name = f"Bench Model {number:03d}".encode()
        head = data[:4096].replace(NAME_PLACEHOLDER.encode(), name, 1)
        folder = root / "models" / f"publisher-{number % 10}" / f"model-{number % 40}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"bench-model-{number:03d}-7b-Q4_K_M.gguf"
        path.write_bytes(head + data[4096:])
        synthetic.append(path)
    shutil.rmtree(bases)
    gemma = assemble_gemma(root / "gemma")
    return Tree(root, tuple(synthetic), gemma)
