"""The catalog's frozen records: what one model file is, and what the user said about it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from modelyard.settings import EngineName, Tier

Source = Literal["hf", "ollama", "folder", "curated", "default"]


@dataclass(frozen=True)
class Overrides:
    """What the user set by hand, kept by model id across rescans. ``None`` means not set."""

    tier: Tier | None = None
    thinking: bool | None = None
    enabled: bool | None = None
    display_name: str | None = None
    roles: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Model:
    """One catalog entry. Discovered facts plus overrides, already merged.

    ``path`` is the file to serve (the first part of a split model); ``paths`` every path that
    reaches the same file; ``parts`` every part of a split model in order.
    """

    id: str
    name: str
    source: Source
    engine: EngineName = "llamacpp"
    path: str | None = None
    paths: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()
    mmproj: str | None = None
    size_bytes: int = 0
    architecture: str | None = None
    family: str | None = None
    basename: str | None = None
    finetune: str | None = None
    size_label: str | None = None
    license: str | None = None
    parameters_b: float | None = None
    quantization: str | None = None
    context_length: int | None = None
    block_count: int | None = None
    embedding_length: int | None = None
    head_count: int | None = None
    head_count_kv: int | None = None
    key_length: int | None = None
    value_length: int | None = None
    sliding_window: int | None = None  # {arch}.attention.sliding_window: SWA layers' span
    expert_count: int | None = None
    expert_used_count: int | None = None
    tensor_bytes: int | None = None
    chat_template: str | None = None
    tier: Tier | None = None
    tier_overridden: bool = False
    thinking: bool = False
    thinking_overridden: bool = False
    coder: bool = False
    instruct: bool = False
    vision: bool = False
    embedding: bool = False
    pooling_type: int | None = None  # {arch}.pooling_type: how an embedding model pools
    tools: bool = False
    enabled: bool = True
    display_name: str | None = None
    roles: dict[str, int] = field(default_factory=dict)
    ollama_name: str | None = None
    ollama_names: tuple[str, ...] = ()  # every name:tag whose manifest names this file
    hf_repo: str | None = None
    hf_revision: str | None = None
    url: str | None = None
    served_name: str | None = None  # the name the server knows (Ollama name:tag, remote id)
    api_key_env: str | None = None  # the variable holding a remote's key (the name only)
    memory_bytes: int | None = None
    error: str | None = None

    def to_dict(self, *, template: bool = False) -> dict[str, Any]:
        """JSON-ready dict. The chat template is left out unless asked for: it can be large."""
        # Field by field rather than asdict(): asdict deep-copies every value, and a rescan
        # serialises every model; the only mutable value, roles, is copied here.
        data = {name: getattr(self, name) for name in _FIELD_ORDER}
        data["roles"] = dict(self.roles)
        data["paths"] = list(self.paths)
        data["parts"] = list(self.parts)
        data["ollama_names"] = list(self.ollama_names)
        if not template:
            data.pop("chat_template")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        """The inverse of ``to_dict(template=True)``. Unknown keys are ignored, so a record
        stored by an older version still loads; raises TypeError if a required key is missing.
        """
        known = {k: v for k, v in data.items() if k in _FIELD_NAMES}
        for name in ("paths", "parts", "ollama_names"):
            if name in known:
                known[name] = tuple(known[name])
        return cls(**known)


_FIELD_ORDER = tuple(f.name for f in fields(Model))
_FIELD_NAMES = frozenset(_FIELD_ORDER)
