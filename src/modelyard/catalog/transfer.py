"""The export document: overrides and curated entries as JSON, and its strict parser.

Pure. ``parse_document`` checks all of a document before the catalog writes any of it, and
raises ValidationFailed naming the first thing that is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from modelyard.catalog.model import Overrides
from modelyard.catalog.overrides import overrides_from_dict
from modelyard.errors import InvalidReference, ValidationFailed
from modelyard.settings import CuratedModel, describe_validation_error

FORMAT = "modelyard.catalog"
VERSION = 1
_KEYS = frozenset({"format", "version", "overrides", "curated"})


@dataclass(frozen=True)
class Document:
    """A parsed import: overrides by model id (non-empty), curated entries not in config."""

    overrides: dict[str, dict[str, Any]]
    curated: dict[str, CuratedModel]


def export_document(
    overrides: Mapping[str, Overrides], curated: Sequence[CuratedModel]
) -> dict[str, Any]:
    """The JSON-ready document ``parse_document`` reads back."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "overrides": {k: overrides[k].to_dict() for k in sorted(overrides)},
        "curated": [c.model_dump(mode="json", exclude_defaults=True) for c in curated],
    }


def parse_document(data: Any, config: Sequence[CuratedModel]) -> Document:
    """Validate an export. Curated entries whose id the config file defines must equal it
    (config is where they are edited) and are not kept. Raises ValidationFailed; InvalidReference
    for a well-formed entry that comes twice or differs from the config."""
    if not isinstance(data, dict):
        raise ValidationFailed("import: expected a JSON object", param="import")
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise ValidationFailed(
            f"import: expected format '{FORMAT}' version {VERSION}, got "
            f"{data.get('format')!r} version {data.get('version')!r}",
            param="format",
        )
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ValidationFailed(f"import: unknown key '{unknown[0]}'", param=unknown[0])
    return Document(
        _overrides(data.get("overrides", {})), _curated(data.get("curated", []), config)
    )


def _overrides(raw: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        raise ValidationFailed("overrides: expected an object by model id", param="overrides")
    parsed = {str(k): overrides_from_dict(v, f"overrides.{k}").to_dict() for k, v in raw.items()}
    return {k: v for k, v in parsed.items() if v}


def _curated(raw: Any, config: Sequence[CuratedModel]) -> dict[str, CuratedModel]:
    if not isinstance(raw, list):
        raise ValidationFailed("curated: expected a list", param="curated")
    configured = {c.id: c for c in config}
    curated: dict[str, CuratedModel] = {}
    seen: set[str] = set()
    for index, item in enumerate(raw):
        try:
            entry = CuratedModel.model_validate(item)
        except ValidationError as exc:
            raise ValidationFailed(
                describe_validation_error(exc, f"curated[{index}]"), param="curated"
            ) from None
        if entry.id in seen:
            raise InvalidReference(
                f"curated[{index}]: id '{entry.id}' appears twice", param="curated"
            )
        seen.add(entry.id)
        if entry.id not in configured:
            curated[entry.id] = entry
        elif configured[entry.id] != entry:
            raise InvalidReference(
                f"curated[{index}]: '{entry.id}' is defined in the config file and differs "
                "from it; edit it there",
                param="curated",
            )
    return curated
