"""The fleet's tables: ``instances`` (settings, port, desired state) and ``processes`` (pid,
process group and creation time of each running server, to find leftovers after a crash).

Every method is one synchronous transaction; async callers use ``asyncio.to_thread``. Changes
made on behalf of someone are audited in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

from modelyard.errors import Conflict, ValidationFailed
from modelyard.fleet.instance import MAX_NUMBER, Desired, InstanceConfig, clean_config, instance_id
from modelyard.fleet.ports import pick_port
from modelyard.store import Store
from modelyard.store.db import now_iso


@dataclass(frozen=True)
class InstanceRow:
    """One stored instance. ``error`` is set when its stored settings could not be read."""

    id: str
    model_id: str
    number: int
    port: int
    config: InstanceConfig
    desired: Desired
    error: str | None = None


@dataclass(frozen=True)
class ProcessRow:
    instance_id: str
    pid: int
    pgid: int
    create_time: float


class InstanceRecords:
    """Reads and writes the fleet's tables."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def load(self) -> list[InstanceRow]:
        rows = self._store.query(
            "SELECT id, model_id, number, port, config, desired FROM instances ORDER BY id"
        )
        loaded = []
        for row in rows:
            try:
                config, error = clean_config(json.loads(row["config"])), None
            except (ValueError, ValidationFailed) as exc:
                config, error = InstanceConfig(), f"stored settings unreadable: {exc}"
            loaded.append(
                InstanceRow(
                    row["id"],
                    row["model_id"],
                    row["number"],
                    row["port"],
                    config,
                    row["desired"],
                    error,
                )
            )
        return loaded

    def insert(
        self,
        model_id: str,
        config: InstanceConfig,
        count: int,
        *,
        actor: str,
        port_range: tuple[int, int],
        gateway_port: int,
        held: Collection[int] = (),
    ) -> list[tuple[int, int]]:
        """Pick the lowest free numbers and free ports and insert ``count`` instances, in one
        transaction. Returns their (number, port)s. Raises Conflict (all 99 numbers used),
        NoFreePort."""
        with self._store.transaction() as conn:
            rows = conn.execute("SELECT model_id, number, port FROM instances").fetchall()
            used = {r[1] for r in rows if r[0] == model_id}
            taken = {r[2] for r in rows} | set(held)
            free = [n for n in range(1, MAX_NUMBER + 1) if n not in used]
            if len(free) < count:
                raise Conflict(f"model {model_id} has {len(used)} instances; at most {MAX_NUMBER}")
            created = []
            now = now_iso()
            for number in free[:count]:
                port = pick_port(port_range, gateway_port=gateway_port, held=taken)
                taken.add(port)
                ident = instance_id(model_id, number)
                conn.execute(
                    "INSERT INTO instances (id, model_id, number, port, config, desired, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'stopped', ?, ?)",
                    (ident, model_id, number, port, json.dumps(config.to_dict()), now, now),
                )
                new = {"port": port, **config.to_dict()}
                self._store.audit(
                    conn, actor=actor, action="instance.create", target=ident, new=new
                )
                created.append((number, port))
        return created

    def write_config(
        self, ident: str, old: InstanceConfig, new: InstanceConfig, *, actor: str
    ) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE instances SET config = ?, updated_at = ? WHERE id = ?",
                (json.dumps(new.to_dict()), now_iso(), ident),
            )
            self._store.audit(
                conn,
                actor=actor,
                action="instance.update",
                target=ident,
                old=old.to_dict(),
                new=new.to_dict(),
            )

    def write_port(self, ident: str, port: int) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE instances SET port = ?, updated_at = ? WHERE id = ?",
                (port, now_iso(), ident),
            )

    def write_desired(self, ident: str, old: Desired, new: Desired, *, actor: str) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE instances SET desired = ?, updated_at = ? WHERE id = ?",
                (new, now_iso(), ident),
            )
            self._store.audit(
                conn, actor=actor, action="instance.desired", target=ident, old=old, new=new
            )

    def remove(self, ident: str, port: int, config: InstanceConfig, *, actor: str) -> None:
        with self._store.transaction() as conn:
            conn.execute("DELETE FROM instances WHERE id = ?", (ident,))
            conn.execute("DELETE FROM processes WHERE instance_id = ?", (ident,))
            self._store.audit(
                conn,
                actor=actor,
                action="instance.delete",
                target=ident,
                old={"port": port, **config.to_dict()},
            )

    # -- processes ----------------------------------------------------------------------

    def record_process(self, ident: str, row: ProcessRow, port: int) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO processes "
                "(instance_id, pid, pgid, create_time, port, started_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (ident, row.pid, row.pgid, row.create_time, port, now_iso()),
            )

    def forget_process(self, ident: str) -> None:
        with self._store.transaction() as conn:
            conn.execute("DELETE FROM processes WHERE instance_id = ?", (ident,))

    def processes(self) -> list[ProcessRow]:
        rows = self._store.query("SELECT instance_id, pid, pgid, create_time FROM processes")
        return [ProcessRow(r[0], r[1], r[2], r[3]) for r in rows]

    def clear_processes(self) -> None:
        with self._store.transaction() as conn:
            conn.execute("DELETE FROM processes")
