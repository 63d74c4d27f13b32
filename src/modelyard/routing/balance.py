"""Which instance of a model goes first. Pure: the caller owns the turn counter and the dice.

Every strategy returns all the instances it was given, in the order to try them, so the
ones after the first are the retry order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, get_args

from modelyard.routing.view import InstanceInfo

Strategy = Literal["round_robin", "least_loaded", "random"]
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)


def order(
    instances: Sequence[InstanceInfo],
    strategy: Strategy,
    turn: int,
    dice: float,
    load: Mapping[str, int] | None = None,
) -> tuple[InstanceInfo, ...]:
    """Order ``instances`` for one request.

    - ``round_robin``: rotated by ``turn`` (the caller increments it per request);
    - ``least_loaded``: fewest requests in flight first (``load`` by instance id when given,
      else each instance's ``in_flight``); ties rotated by ``turn`` so equal instances share;
    - ``random``: rotated by ``dice`` in [0, 1).
    """
    count = len(instances)
    if count <= 1:
        return tuple(instances)
    if strategy == "random":
        return _rotate(instances, int(dice * count) % count)
    rotated = _rotate(instances, turn % count)
    if strategy == "least_loaded":
        counts = load or {}
        return tuple(sorted(rotated, key=lambda i: counts.get(i.id, i.in_flight)))
    return rotated


def _rotate(items: Sequence[InstanceInfo], start: int) -> tuple[InstanceInfo, ...]:
    return (*items[start:], *items[:start])
