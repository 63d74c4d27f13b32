"""Instance configurations: what each instance is (model, number, port, settings, desired
state), kept in memory and written through to the store.

``InstanceConfigs`` is the one owner of these records. Records are frozen; a change replaces
the record. Every change is one store transaction (audited) made in a worker thread, and the
changes are serialised by one lock so a read-merge-write never acts on a stale record: two
updates built from the same old settings both land, in order. A change sent with an expected
version (``InstanceRecord.version``, the ETag of ``GET /api/instances/{id}``) lands only if the
settings are still at that version, else Conflict.

When the store refuses a change (StoreUnwritable) the record is left as it was and the error
raised, except for the desired state: starting and stopping must not depend on the disk, so
it changes in memory at once and its write goes through ``PendingWrites`` (kept and retried
until the store takes it).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from modelyard.errors import Conflict, InstanceNotFound, ValidationFailed
from modelyard.fleet.instance import (
    MAX_NUMBER,
    Desired,
    InstanceConfig,
    clean_config,
    instance_id,
)
from modelyard.fleet.pending import PendingWrites
from modelyard.fleet.ports import pick_port
from modelyard.settings import Settings
from modelyard.store import Store
from modelyard.store.instances import InstanceRecords, InstanceRow


@dataclass(frozen=True)
class InstanceRecord:
    """One instance's configuration. ``broken`` says why its stored settings were unusable
    (it then runs with the defaults until they are set again)."""

    id: str
    model_id: str
    number: int
    port: int
    config: InstanceConfig
    desired: Desired = "stopped"
    broken: str | None = None

    @cached_property
    def version(self) -> str:
        """A hash of the settings: changes when any setting changes."""
        raw = json.dumps(self.config.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(raw).hexdigest()[:16]


ChangeListener = Callable[[str, InstanceRecord], None]
"""``(kind, record)``: kind ``created``, ``updated`` or ``deleted``; called on the loop."""


class InstanceConfigs:
    """Every instance's record. Reads are in memory; writes go through the store first."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        on_change: ChangeListener,
        writes: PendingWrites | None = None,
    ) -> None:
        """Reads the records from the store (synchronously: built before the loop runs).
        ``writes`` carries the desired-state writes (the fleet shares its own)."""
        self._settings = settings
        self.store = store
        self._records = InstanceRecords(store)
        self._on_change = on_change
        self._writes = writes or PendingWrites()
        self._lock = asyncio.Lock()
        self._by_id = {row.id: _record(row) for row in self._records.load()}

    # -- reading ----------------------------------------------------------------------------

    def all(self) -> list[InstanceRecord]:
        """Every record, sorted by id."""
        return [self._by_id[key] for key in sorted(self._by_id)]

    def get(self, ident: str) -> InstanceRecord:
        """Raises InstanceNotFound."""
        record = self._by_id.get(ident)
        if record is None:
            raise InstanceNotFound(f"no instance '{ident}'", param="instance")
        return record

    def find(self, ident: str) -> InstanceRecord | None:
        return self._by_id.get(ident)

    def ports(self, exclude: str | None = None) -> set[int]:
        return {r.port for r in self._by_id.values() if r.id != exclude}

    # -- changing ---------------------------------------------------------------------------

    async def create(
        self, model_id: str, config: InstanceConfig, count: int, *, actor: str
    ) -> list[InstanceRecord]:
        """``count`` new records of ``model_id``: the lowest free numbers, free ports. Raises
        ValidationFailed (count), Conflict (all 99 numbers used), NoFreePort."""
        if not 1 <= count <= MAX_NUMBER:
            raise ValidationFailed(f"count must be 1-{MAX_NUMBER}", param="count")
        fleet = self._settings.fleet

        def pick(used: set[int], taken: set[int]) -> list[tuple[str, int, int]]:
            free = [n for n in range(1, MAX_NUMBER + 1) if n not in used]
            if len(free) < count:
                raise Conflict(f"model {model_id} has {len(used)} instances; at most {MAX_NUMBER}")
            chosen = []
            for number in free[:count]:
                port = pick_port(
                    fleet.port_range, gateway_port=self._settings.server.port, held=taken
                )
                taken.add(port)
                chosen.append((instance_id(model_id, number), number, port))
            return chosen

        async with self._lock:
            rows = await asyncio.to_thread(
                self._records.insert,
                model_id,
                config.to_dict(),
                pick,
                actor=actor,
                held=self.ports(),
            )
            created = [InstanceRecord(i, model_id, n, p, config) for i, n, p in rows]
            for record in created:
                self._by_id[record.id] = record
        for record in created:
            self._on_change("created", record)
        return created

    async def update(
        self,
        ident: str,
        changes: dict[str, Any],
        *,
        actor: str,
        expected_version: str | None = None,
    ) -> InstanceRecord:
        """Merge ``changes`` (keys of InstanceConfig) into the settings. Raises
        InstanceNotFound, ValidationFailed, Conflict (``expected_version`` is stale)."""
        async with self._lock:
            old = self.get(ident)
            if expected_version is not None and expected_version != old.version:
                raise Conflict(
                    f"instance {ident} changed since version {expected_version}; read it again",
                    param="If-Match",
                )
            config = clean_config(changes, base=old.config)
            await asyncio.to_thread(
                self._records.write_config,
                ident,
                old.config.to_dict(),
                config.to_dict(),
                actor=actor,
            )
            new = self._by_id[ident] = replace(old, config=config, broken=None)
        self._on_change("updated", new)
        return new

    async def delete(self, ident: str, *, actor: str) -> InstanceRecord:
        """Forget the record (its process must be stopped first). Raises InstanceNotFound."""
        async with self._lock:
            record = self.get(ident)
            await asyncio.to_thread(
                self._records.remove, ident, record.port, record.config.to_dict(), actor=actor
            )
            del self._by_id[ident]
            self._writes.discard(f"desired:{ident}")
        self._on_change("deleted", record)
        return record

    async def set_desired(self, ident: str, desired: Desired, *, actor: str) -> str | None:
        """Record whether the instance should be running (kept across restarts). The record
        changes at once; returns None once stored, else why the store refused it (the write
        is then kept and retried, see the module docstring). Never raises StoreError."""
        async with self._lock:
            record = self._by_id.get(ident)
            if record is None or record.desired == desired:
                return None
            self._by_id[ident] = replace(record, desired=desired)
            write = functools.partial(
                self._records.write_desired, ident, record.desired, desired, actor=actor
            )
            what = f"storing the desired state of {ident} ({desired})"
            return await self._writes.write(f"desired:{ident}", what, write)

    async def move_port(self, ident: str, held: Collection[int]) -> InstanceRecord:
        """A free port for ``ident`` (its own was taken by another process), stored."""
        async with self._lock:
            self.get(ident)
            port = pick_port(
                self._settings.fleet.port_range,
                gateway_port=self._settings.server.port,
                held={*held, *self.ports(exclude=ident)},
            )
            await asyncio.to_thread(self._records.write_port, ident, port)
            new = self._by_id[ident] = replace(self._by_id[ident], port=port)
        return new


def _record(row: InstanceRow) -> InstanceRecord:
    broken = None
    try:
        if row.config is None:
            raise ValidationFailed("not a JSON object")
        config = clean_config(row.config)
    except ValidationFailed as exc:
        config, broken = InstanceConfig(), f"stored settings unreadable: {exc.message}"
    desired: Desired = "running" if row.desired == "running" else "stopped"
    return InstanceRecord(row.id, row.model_id, row.number, row.port, config, desired, broken)
