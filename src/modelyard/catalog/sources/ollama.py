"""Ollama's model store: ``manifests/<registry>/<namespace>/<name>/<tag>`` naming blobs.

A manifest is JSON whose ``layers`` list a layer of media type
``application/vnd.ollama.image.model`` (the GGUF) and, for vision models, one of
``application/vnd.ollama.image.projector``; each layer's ``digest`` ``sha256:<hex>`` is the
file ``blobs/sha256-<hex>``. Models are named the way ``ollama list`` shows them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from modelyard.catalog.sources import FoundFile, SourceScan, found_file

MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
PROJECTOR_MEDIA_TYPE = "application/vnd.ollama.image.projector"
DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
_DIGEST = re.compile(r"[a-z0-9]+:[0-9a-fA-F]+")  # never a path: a digest names a blob file


def ollama_models_dir(configured: Path | None) -> Path:
    """``discovery.ollama_models`` (which the settings fill from ``OLLAMA_MODELS`` when
    unset), else Ollama's default, ``~/.ollama/models``."""
    if configured is not None:
        return configured.expanduser()
    return Path("~/.ollama/models").expanduser()


def display_name(registry: str, namespace: str, name: str, tag: str) -> str:
    """The name ``ollama list`` shows: ``name:tag`` for the default registry's library."""
    if registry == DEFAULT_REGISTRY:
        if namespace == DEFAULT_NAMESPACE:
            return f"{name}:{tag}"
        return f"{namespace}/{name}:{tag}"
    return f"{registry}/{namespace}/{name}:{tag}"


def scan_ollama(models_dir: Path) -> SourceScan:
    """Every manifest's model blob (and projector blob), named ``name:tag``.

    A missing store is not a warning. An unreadable or malformed manifest is. A manifest whose
    blob is missing is listed with ``error`` so the user sees which model is broken.
    """
    manifests = models_dir / "manifests"
    if not manifests.is_dir():
        return SourceScan()
    files: list[FoundFile] = []
    warnings: list[str] = []
    for manifest, parts in _manifests(manifests):
        try:
            data = json.loads(manifest.read_bytes())
        except (OSError, ValueError) as exc:
            warnings.append(f"Ollama manifest {manifest}: cannot be read: {exc}")
            continue
        model_digest = _layer_digest(data, MODEL_MEDIA_TYPE)
        if model_digest is None:
            continue  # not a GGUF model (an adapter-only or embedding-less manifest)
        name = display_name(*parts)
        projector_digest = _layer_digest(data, PROJECTOR_MEDIA_TYPE)
        projector = (
            _blob_path(models_dir, projector_digest) if projector_digest is not None else None
        )
        if projector is not None:
            files.append(
                found_file(projector, FoundFile("", "ollama", ollama_name=name, projector=True))
            )
        template = FoundFile("", "ollama", ollama_name=name, ollama_projector=projector)
        files.append(found_file(_blob_path(models_dir, model_digest), template))
    return SourceScan(tuple(files), tuple(warnings))


def _manifests(root: Path) -> list[tuple[Path, tuple[str, str, str, str]]]:
    """Manifest files four levels down, with (registry, namespace, name, tag), sorted."""
    found: list[tuple[Path, tuple[str, str, str, str]]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        relative = Path(dirpath).relative_to(root).parts
        if len(relative) == 3:
            dirnames.clear()
            registry, namespace, name = relative
            for tag in sorted(filenames):
                if not tag.startswith("."):
                    found.append((Path(dirpath) / tag, (registry, namespace, name, tag)))
    return found


def _layer_digest(manifest: Any, media_type: str) -> str | None:
    if not isinstance(manifest, dict):
        return None
    for layer in manifest.get("layers") or ():
        if isinstance(layer, dict) and layer.get("mediaType") == media_type:
            digest = layer.get("digest")
            if isinstance(digest, str) and _DIGEST.fullmatch(digest):
                return digest
    return None


def _blob_path(models_dir: Path, digest: str) -> str:
    return str(models_dir / "blobs" / digest.replace(":", "-", 1))
