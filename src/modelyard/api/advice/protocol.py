"""Request and response bodies of the advice routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from modelyard.api.bodies import STRICT

Priority = Literal["speed", "balanced", "quality"]


class RecommendBody(BaseModel):
    model_config = STRICT

    memory_gb: float = Field(gt=0, le=4096, description="Memory the model may use, GiB")
    priority: Priority = "balanced"


class Candidate(BaseModel):
    model_id: str
    display_name: str | None
    enabled: bool
    tier: str | None
    parameters_b: float | None
    quantization: str | None
    memory_estimate_bytes: int
    fits: bool
    score: float
    tokens_per_s: float | None = Field(None, description="measured by the gateway")
    reasons: list[str]


class RecommendOut(BaseModel):
    memory_gb: float
    priority: Priority
    recommended: Candidate | None
    reasons: list[str]
    alternatives: list[Candidate]


class CompatibilityBody(BaseModel):
    model_config = STRICT

    model: str = Field(min_length=1, max_length=200)
    ctx: int | None = Field(None, ge=256, le=1_048_576)


class EstimateOut(BaseModel):
    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    overhead_bytes: int
    host_bytes: int
    total_bytes: int
    device: str
    measured: bool


class CompatibilityOut(BaseModel):
    model: str
    ctx: int
    fits: bool = Field(description="fits now, without stopping anything")
    fits_after_stopping: bool
    would_stop: list[str]
    estimate: EstimateOut
    budget_bytes: int
    free_bytes: int
    reason: str | None
    warnings: list[str]


class RoleChoice(BaseModel):
    model_id: str
    priority: int | None
    enabled: bool
    memory_estimate_bytes: int


class RoleOut(BaseModel):
    role: str
    model: str
    priority: int | None
    source: Literal["profile", "catalog"]
    memory_estimate_bytes: int
    candidates: list[RoleChoice]
