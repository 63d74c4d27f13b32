"""Catalog records from what was found: a unit's header and names, or a curated entry.

Pure. The header decides every field it has; the file name (or Ollama ``name:tag``) fills only
what the header lacks.
"""

from __future__ import annotations

import re

from modelyard.catalog.classify import classify, tier_for
from modelyard.catalog.gguf import GGUFHeader
from modelyard.catalog.grouping import Unit
from modelyard.catalog.ids import slugify
from modelyard.catalog.model import Model
from modelyard.settings import CuratedModel, TierThresholds


def unit_slug(unit: Unit) -> str:
    """The id a unit asks for: the slug of its stem (its ``name:tag`` for Ollama)."""
    return slugify(unit.name.stem)


def discovered_model(unit: Unit, model_id: str, thresholds: TierThresholds) -> Model:
    """The record for one unit, before overrides."""
    first = unit.first
    header = unit.header
    info = unit.name
    ollama_names = tuple(sorted({f.ollama_name for f in first.found if f.ollama_name}))
    names = tuple(
        value
        for value in (
            first.primary.name,
            *ollama_names,
            first.fact("hf_repo"),
            header.name if header else None,
            header.basename if header else None,
            header.finetune if header else None,
        )
        if value
    )
    traits = classify(
        names=names,
        chat_template=header.chat_template if header else None,
        architecture=header.architecture if header else None,
        pooling_type=header.pooling_type if header else None,
        has_projector=unit.projector is not None,
        vision_keys=header.vision if header else False,
    )
    parameters_b = _parameters_b(unit) or info.parameters_b
    quantization = (header.quantization if header else None) or info.quantization
    usable = unit.error is None
    tier = (
        tier_for(
            parameters_b=parameters_b,
            quantization=quantization,
            thinking=traits.thinking,
            embedding=traits.embedding,
            thresholds=thresholds,
        )
        if usable
        else None
    )
    split = len(unit.parts) > 1 or (info.split_total or 0) > 1
    tensor_bytes = [h.tensor_bytes for h in unit.part_headers if h is not None]
    return Model(
        id=model_id,
        name=ollama_names[0] if ollama_names else info.stem,
        source=first.primary.source,
        path=first.primary.path,
        paths=first.paths,
        parts=tuple(part.primary.path for part in unit.parts) if split else (),
        mmproj=unit.projector.primary.path if unit.projector else None,
        size_bytes=sum(part.primary.size for part in unit.parts),
        architecture=header.architecture if header else None,
        family=_family(header, info.family),
        basename=header.basename if header else None,
        finetune=header.finetune if header else None,
        size_label=header.size_label if header else None,
        license=header.license if header else None,
        parameters_b=parameters_b,
        quantization=quantization,
        context_length=header.context_length if header else None,
        block_count=header.block_count if header else None,
        embedding_length=header.embedding_length if header else None,
        head_count=header.head_count if header else None,
        head_count_kv=header.head_count_kv if header else None,
        key_length=header.key_length if header else None,
        value_length=header.value_length if header else None,
        expert_count=header.expert_count if header else None,
        expert_used_count=header.expert_used_count if header else None,
        tensor_bytes=sum(tensor_bytes) if tensor_bytes else None,
        sliding_window=header.sliding_window if header else None,
        chat_template=header.chat_template if header else None,
        tier=tier,
        thinking=traits.thinking,
        coder=traits.coder,
        instruct=traits.instruct,
        vision=traits.vision or unit.projector is not None,
        embedding=traits.embedding,
        pooling_type=header.pooling_type if header else None,
        tools=traits.tools,
        enabled=usable,
        ollama_name=ollama_names[0] if ollama_names else None,
        ollama_names=ollama_names,
        hf_repo=first.fact("hf_repo"),
        hf_revision=first.fact("hf_revision"),
        error=unit.error,
    )


def curated_model(entry: CuratedModel, thresholds: TierThresholds) -> Model:
    """The record for a curated entry: its config fields, tier computed if not given."""
    path = str(entry.path.expanduser()) if entry.path is not None else None
    tier = entry.tier
    if tier is None:
        tier = tier_for(
            parameters_b=entry.parameters_b,
            quantization=entry.quantization,
            thinking=entry.thinking,
            embedding=entry.embedding,
            thresholds=thresholds,
        )
    return Model(
        id=entry.id,
        name=entry.name or entry.id,
        source="curated",
        engine=entry.engine,
        path=path,
        paths=(path,) if path else (),
        architecture=entry.architecture,
        family=entry.family,
        parameters_b=entry.parameters_b,
        quantization=entry.quantization,
        context_length=entry.context_length,
        tier=tier,
        thinking=entry.thinking,
        coder=entry.coder,
        instruct=entry.instruct,
        vision=entry.vision,
        embedding=entry.embedding,
        tools=entry.tools,
        enabled=entry.enabled,
        display_name=entry.name,
        roles=dict(entry.roles),
        url=entry.url,
        served_name=entry.served_name,
        api_key_env=entry.api_key_env,
        memory_bytes=entry.memory_bytes,
    )


def remote_entry(entry: CuratedModel, name: str) -> CuratedModel:
    """The curated entry for model ``name`` listed by remote entry ``entry``'s server: id
    ``ENTRY--NAME`` (characters an id may not hold become ``-``), served under ``name``
    through the entry's url and key variable, with the entry's other fields."""
    safe = _UNSAFE_ID.sub("-", name).strip("-.") or "model"
    ident = f"{entry.id}--{safe}"[:128]
    title = f"{entry.name or entry.id}: {name}"
    return entry.model_copy(update={"id": ident, "served_name": name, "name": title})


_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._\-]+")


def _family(header: GGUFHeader | None, from_name: str | None) -> str | None:
    """``general.basename`` as a slug, else the name's family, else the architecture."""
    if header is not None and header.basename:
        return slugify(header.basename)
    return from_name or (header.architecture if header else None)


def _parameters_b(unit: Unit) -> float | None:
    """Billions of parameters from the header: the size label, else the tensor shapes of every
    part (a split model's later parts hold the rest of its tensors)."""
    header = unit.header
    if header is None or header.parameters is None:
        return None
    total = header.parameters
    if header.size_label is None and len(unit.part_headers) > 1:
        counted = [h.parameters for h in unit.part_headers if h is not None and h.parameters]
        total = sum(counted)
    return float(f"{total / 1e9:.4g}")
