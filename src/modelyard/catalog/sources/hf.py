"""The Hugging Face hub cache, read with ``huggingface_hub``'s own cache scanner.

GGUF files live under ``models--org--name/snapshots/<revision>/`` as symlinks into ``blobs/``.
The scanner reports a corrupt repo as a warning instead of failing; so do we.
"""

from __future__ import annotations

from pathlib import Path

from modelyard.catalog.sources import FoundFile, SourceScan, found_file, is_gguf_name


def hf_cache_dir(configured: Path | None) -> Path:
    """Where the Hugging Face tools put the cache: ``discovery.hf_cache`` (which the settings
    fill from ``HF_HUB_CACHE`` or ``HF_HOME/hub`` when unset), else their default,
    ``~/.cache/huggingface/hub``."""
    if configured is not None:
        return configured.expanduser()
    return Path("~/.cache/huggingface/hub").expanduser()


def scan_hf(cache_dir: Path) -> SourceScan:
    """The GGUF files of every cached model repo, with repo id, revision and refs.

    A missing cache is not a warning: most machines have none. Never raises for one repo.
    huggingface_hub is imported here, on the first scan of a cache: a server whose catalog
    comes from the store does not carry it (and the HTTP client it imports).
    """
    from huggingface_hub import CacheNotFound, scan_cache_dir

    try:
        info = scan_cache_dir(cache_dir)
    except CacheNotFound:
        return SourceScan()
    except (OSError, ValueError) as exc:
        return SourceScan(warnings=(f"Hugging Face cache {cache_dir}: {exc}",))
    files: list[FoundFile] = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        for revision in sorted(repo.revisions, key=lambda r: r.commit_hash):
            template = FoundFile(
                path="",
                source="hf",
                hf_repo=repo.repo_id,
                hf_revision=revision.commit_hash,
                hf_refs=tuple(sorted(revision.refs)),
            )
            for cached in sorted(revision.files, key=lambda f: str(f.file_path)):
                if is_gguf_name(cached.file_name):
                    files.append(found_file(str(cached.file_path), template))
    warnings = tuple(f"Hugging Face cache: {warning}" for warning in info.warnings)
    return SourceScan(tuple(files), warnings)
