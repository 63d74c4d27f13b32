"""What the gateway routes over: one frozen ``Snapshot`` of the catalog and the fleet.

Rebuilt only when the fleet reports a change or the catalog's snapshot changes, so the hot
path reads no store and no process table. A snapshot that is still current (no change since
it was built) is exact: with a lease held, a ``ready`` instance in it cannot be unloading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modelyard.catalog.model import Model
from modelyard.fleet.budget import Room
from modelyard.fleet.instance import InstanceView
from modelyard.routing.view import InstanceInfo, RoutingView, build, build_index


@dataclass(frozen=True)
class Snapshot:
    view: RoutingView
    instances: Mapping[str, InstanceView]


def build_snapshot(
    models: Mapping[str, Model], views: list[InstanceView], room: Room | None
) -> Snapshot:
    infos = [_info(v) for v in views]
    index = build_index(models.values(), infos)
    free = room.free if room is not None else None
    loadable = room.reclaimable if room is not None else None
    view = build(models, infos, free, index, loadable_bytes=loadable)
    return Snapshot(view, {v.id: v for v in views})


def _info(view: InstanceView) -> InstanceInfo:
    return InstanceInfo(
        id=view.id,
        model_id=view.model_id,
        state=view.state,
        in_flight=view.in_flight,
        display_name=view.config.display_name,
        persona=bool(view.config.system_prompt),
        on_demand=view.config.on_demand,
    )
