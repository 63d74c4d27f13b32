"""On-disk layouts the catalog discovers, built for real in a temporary folder.

A Hugging Face cache (``models--org--name/blobs`` + ``snapshots/<rev>/`` symlinks + ``refs``),
an Ollama store (manifests + ``sha256-<digest>`` blobs), and plain files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from tests.support.ggufs import write_gguf

REVISION = "0123456789abcdef0123456789abcdef01234567"
Writer = Callable[[Path], object]


def model(**fields: object) -> Writer:
    """A writer of one small GGUF with the given header fields (see ``write_gguf``)."""

    def write(path: Path) -> object:
        return write_gguf(path, **fields)  # type: ignore[arg-type]

    return write


def hf_file(
    cache: Path,
    repo_id: str,
    filename: str,
    writer: Writer,
    *,
    revision: str = REVISION,
    ref: str | None = "main",
) -> Path:
    """Put ``filename`` in the cached repo the way ``huggingface_hub`` does: the bytes in
    ``blobs/<hash>``, a relative symlink in ``snapshots/<revision>/``. Returns the symlink."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    staging = repo / "blobs" / "staging.incomplete"
    writer(staging)
    digest = hashlib.sha256(staging.read_bytes()).hexdigest()
    blob = repo / "blobs" / digest
    staging.replace(blob)
    link = repo / "snapshots" / revision / filename
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    if ref is not None:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(revision)
    return link


def _blob(store: Path, writer: Writer) -> tuple[str, Path]:
    (store / "blobs").mkdir(parents=True, exist_ok=True)
    staging = store / "blobs" / "staging-partial"
    writer(staging)
    digest = "sha256:" + hashlib.sha256(staging.read_bytes()).hexdigest()
    blob = store / "blobs" / digest.replace(":", "-")
    staging.replace(blob)
    return digest, blob


def ollama_model(
    store: Path,
    name: str,
    tag: str,
    writer: Writer,
    *,
    namespace: str = "library",
    registry: str = "registry.ollama.ai",
    projector: Writer | None = None,
) -> Path:
    """Write a blob and a manifest naming it, as ``ollama pull`` leaves them. Returns the blob."""
    digest, blob = _blob(store, writer)
    layers = [
        {"mediaType": "application/vnd.ollama.image.model", "digest": digest, "size": 1},
        {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:00", "size": 1},
    ]
    if projector is not None:
        projector_digest, _ = _blob(store, projector)
        layers.append(
            {
                "mediaType": "application/vnd.ollama.image.projector",
                "digest": projector_digest,
                "size": 1,
            }
        )
    manifest = store / "manifests" / registry / namespace / name / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"schemaVersion": 2, "layers": layers}))
    return blob
