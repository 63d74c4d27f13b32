"""What an instance's engine says of it: its launch spec, memory estimate and parallel slots.

Pure lookups over the catalog (``ModelLookup``) and the engines; no process, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable

from modelyard.catalog.model import Model
from modelyard.engines.base import Engine, LaunchSpec, MemoryEstimate
from modelyard.engines.registry import EngineRegistry
from modelyard.errors import ModelyardError
from modelyard.fleet.configs import InstanceRecord

ModelLookup = Callable[[str], Model]
"""``model_id -> Model``; raises ModelNotFound (``Catalog.get``)."""


class Specs:
    def __init__(self, engines: EngineRegistry, models: ModelLookup) -> None:
        self.engines = engines
        self.models = models

    def of(self, record: InstanceRecord) -> tuple[Engine, LaunchSpec]:
        """The instance's engine and launch spec. Raises ModelNotFound, EngineError."""
        model = self.models(record.model_id)
        engine = self.engines.get(model.engine)
        args = record.config.engine_args
        return engine, LaunchSpec(record.id, model, record.port, alias=record.id, args=args)

    def estimate(self, record: InstanceRecord) -> MemoryEstimate | None:
        """The memory the instance will need; None when its model or engine cannot tell."""
        try:
            engine, spec = self.of(record)
            return engine.estimate(spec)
        except ModelyardError:
            return None

    def parallel_slots(self, record: InstanceRecord) -> int | None:
        """Requests its server takes at once; None: no limit known."""
        try:
            engine, spec = self.of(record)
            return engine.parallel_slots(spec)
        except ModelyardError:
            return record.config.engine_args.parallel
