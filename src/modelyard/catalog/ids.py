"""Model ids: readable slugs, unique, and stable across rescans and restarts.

A model's id is the slug of its file stem (``qwen2.5-coder-14b-instruct-q4_k_m``) or of its
Ollama name (``llama3.2:3b`` -> ``llama3.2-3b``). When two files want the same slug, the one
that held it before keeps it; among new ones the first by path gets it, and the others get a
suffix hashed from their path. Scan order never decides an id.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

_NOT_ALLOWED = re.compile(r"[^a-z0-9._-]+")
_MAX_LENGTH = 100


def slugify(text: str) -> str:
    """Lower-case; runs of anything but ``a-z 0-9 . _ -`` become one ``-``; never empty."""
    slug = _NOT_ALLOWED.sub("-", text.lower()).strip("-._")
    slug = re.sub(r"-{2,}", "-", slug)[:_MAX_LENGTH].rstrip("-._")
    return slug or "model"


def path_suffix(path: str, length: int = 6) -> str:
    """A short, stable hash of a path: what tells two same-named files apart in their ids."""
    return hashlib.sha1(path.encode("utf-8", "surrogateescape")).hexdigest()[:length]


@dataclass(frozen=True)
class IdRequest:
    """One unit asking for an id: its slug, its sort path, and what it was known by before."""

    slug: str
    path: str
    previous: str | None = None


def assign_ids(requests: Sequence[IdRequest], reserved: Iterable[str] = ()) -> list[str]:
    """One unique id per request, in the requests' order.

    ``reserved`` ids (curated entries) are never given out. A request keeps its ``previous``
    id when that id is still its slug or a suffixed form of it and nobody kept it first.
    """
    taken = set(reserved)
    assigned: dict[int, str] = {}
    order = sorted(range(len(requests)), key=lambda i: (requests[i].path, requests[i].slug))
    for i in order:
        previous = requests[i].previous
        if previous is not None and previous not in taken and _derived(previous, requests[i]):
            assigned[i] = previous
            taken.add(previous)
    for i in order:
        if i not in assigned:
            assigned[i] = _fresh(requests[i], taken)
            taken.add(assigned[i])
    return [assigned[i] for i in range(len(requests))]


def _derived(previous: str, request: IdRequest) -> bool:
    return previous == request.slug or previous.startswith(f"{request.slug}-")


def _fresh(request: IdRequest, taken: set[str]) -> str:
    if request.slug not in taken:
        return request.slug
    for length in (6, 10, 40):
        candidate = f"{request.slug}-{path_suffix(request.path, length)}"
        if candidate not in taken:
            return candidate
    counter = 2
    while f"{request.slug}-{counter}" in taken:
        counter += 1
    return f"{request.slug}-{counter}"


def previous_ids(rows: Iterable[tuple[str, str | None, str | None]]) -> Mapping[str, str]:
    """From stored ``(id, file_key, path)`` rows: a lookup from file key and from path to id."""
    lookup: dict[str, str] = {}
    for model_id, file_key, path in rows:
        if path:
            lookup[f"path:{path}"] = model_id
        if file_key:
            lookup[f"key:{file_key}"] = model_id
    return lookup
