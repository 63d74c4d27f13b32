"""One immutable view of the catalog: every model by id, overrides applied.

``Catalog`` builds a snapshot from the store, hands the same object to every reader until a
change, then swaps in a new one; a reader holding the old one keeps a consistent view.
``assemble`` is the pure step from stored values to the models a snapshot holds.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NoReturn, TypeVar, overload

from modelyard.catalog.build import curated_model
from modelyard.catalog.model import Model, Overrides
from modelyard.catalog.overrides import apply_overrides
from modelyard.errors import ModelNotFound
from modelyard.settings import CuratedModel, TierThresholds

_T = TypeVar("_T")
_NO_DEFAULT: Any = object()


class CatalogSnapshot(Mapping[str, Model]):
    """Every model by id, iterated in id order (the order of ``Catalog.models()``), and the
    curated entries (config ones first, then imported ones) they were built with.

    Immutable: attributes cannot be set, and ``models``/``curated`` are tuples of frozen
    records (treat a model's ``roles`` dict as read-only: it is shared by every reader).
    ``version`` increases with each snapshot one ``Catalog`` builds; versions of two Catalog
    objects are unrelated. Reading never does I/O.
    """

    __slots__ = ("_by_id", "_curated", "_models", "_version")

    _by_id: Mapping[str, Model]
    _models: tuple[Model, ...]
    _curated: tuple[CuratedModel, ...]
    _version: int

    def __init__(
        self, models: Iterable[Model], curated: Iterable[CuratedModel] = (), *, version: int
    ) -> None:
        ordered = tuple(sorted(models, key=lambda m: m.id))
        object.__setattr__(self, "_models", ordered)
        object.__setattr__(self, "_by_id", {m.id: m for m in ordered})
        object.__setattr__(self, "_curated", tuple(curated))
        object.__setattr__(self, "_version", version)

    @property
    def version(self) -> int:
        return self._version

    @property
    def models(self) -> tuple[Model, ...]:
        """Every model, in id order."""
        return self._models

    @property
    def curated(self) -> tuple[CuratedModel, ...]:
        return self._curated

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"CatalogSnapshot is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"CatalogSnapshot is immutable (cannot delete {name!r})")

    def __getitem__(self, model_id: str) -> Model:
        return self._by_id[model_id]

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._by_id

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __repr__(self) -> str:
        return f"<CatalogSnapshot version={self.version} models={len(self.models)}>"

    @overload
    def get(self, model_id: str) -> Model: ...

    @overload
    def get(self, model_id: str, default: Model | _T) -> Model | _T: ...

    def get(self, model_id: str, default: Any = _NO_DEFAULT) -> Any:
        """One model by id. Raises ModelNotFound naming the closest ids, unless a ``default``
        is given (then this is ``Mapping.get``)."""
        found = self._by_id.get(model_id)
        if found is not None:
            return found
        if default is not _NO_DEFAULT:
            return default
        close = difflib.get_close_matches(model_id, list(self._by_id), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ModelNotFound(f"no model '{model_id}' in the catalog{hint}", param="model")

    def same_content(self, other: CatalogSnapshot) -> bool:
        """Whether both hold the same models and curated entries (versions aside)."""
        return self.models == other.models and self.curated == other.curated


def assemble(
    discovered: Iterable[Model],
    curated: Sequence[CuratedModel],
    overrides: Mapping[str, Overrides],
    thresholds: TierThresholds,
) -> list[Model]:
    """Every model as the user sees it: discovered records (less those whose id a curated
    entry now takes) and curated entries, each with its overrides applied. Pure."""
    curated_ids = {c.id for c in curated}
    result: list[Model] = []
    for model in discovered:
        if model.id in curated_ids:
            continue  # a curated entry added since the last scan takes the id
        ov = overrides.get(model.id, Overrides())
        result.append(apply_overrides(model, ov, thresholds, auto_tier=model.error is None))
    for entry in curated:
        ov = overrides.get(entry.id, Overrides())
        model = curated_model(entry, thresholds)
        result.append(apply_overrides(model, ov, thresholds, auto_tier=entry.tier is None))
    return result
