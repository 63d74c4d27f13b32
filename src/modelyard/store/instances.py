"""The fleet's tables: ``instances`` (settings, port, desired state) and ``processes`` (pid,
process group, creation time and spawn mark of each running server, to find it and whatever
it started after a crash).

Every method is one synchronous transaction; async callers use ``asyncio.to_thread``. Changes
made on behalf of someone are audited in the same transaction. Settings travel as the plain
dicts ``InstanceConfig.to_dict`` makes; the fleet validates them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from modelyard.store.db import Store, now_iso

Config = dict[str, Any]
Picker = Callable[[set[int], set[int]], list[tuple[str, int, int]]]
"""``(numbers used by the model, ports taken) -> [(id, number, port)]``; may raise."""


@dataclass(frozen=True)
class InstanceRow:
    """One stored instance; ``config`` is None when its stored settings are not JSON."""

    id: str
    model_id: str
    number: int
    port: int
    config: Config | None
    desired: str


@dataclass(frozen=True)
class ProcessRow:
    """A running server's leader: its pid (also its group and session id), psutil's
    creation time, and the spawn mark in its environment (None in rows older versions
    wrote)."""

    instance_id: str
    pid: int
    pgid: int
    create_time: float
    mark: str | None = None


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
                config = json.loads(row["config"])
            except ValueError:
                config = None
            if not isinstance(config, dict):
                config = None
            loaded.append(
                InstanceRow(
                    row["id"], row["model_id"], row["number"], row["port"], config, row["desired"]
                )
            )
        return loaded

    def insert(
        self,
        model_id: str,
        config: Config,
        pick: Picker,
        *,
        actor: str,
        held: Collection[int] = (),
    ) -> list[tuple[str, int, int]]:
        """Insert the instances ``pick`` chooses (from the numbers the model uses and the ports
        taken, ``held`` included), in one transaction, audited. Returns their (id, number,
        port)s. Raises what ``pick`` raises; nothing is written then."""
        with self._store.transaction() as conn:
            rows = conn.execute("SELECT model_id, number, port FROM instances").fetchall()
            used = {r[1] for r in rows if r[0] == model_id}
            taken = {r[2] for r in rows} | set(held)
            chosen = pick(used, taken)
            now = now_iso()
            for ident, number, port in chosen:
                conn.execute(
                    "INSERT INTO instances (id, model_id, number, port, config, desired, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'stopped', ?, ?)",
                    (ident, model_id, number, port, json.dumps(config), now, now),
                )
                new = {"port": port, **config}
                self._store.audit(
                    conn, actor=actor, action="instance.create", target=ident, new=new
                )
        return chosen

    def write_config(self, ident: str, old: Config, new: Config, *, actor: str) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE instances SET config = ?, updated_at = ? WHERE id = ?",
                (json.dumps(new), now_iso(), ident),
            )
            self._store.audit(
                conn, actor=actor, action="instance.update", target=ident, old=old, new=new
            )

    def write_port(self, ident: str, port: int) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE instances SET port = ?, updated_at = ? WHERE id = ?",
                (port, now_iso(), ident),
            )

    def write_desired(self, ident: str, old: str, new: str, *, actor: str) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE instances SET desired = ?, updated_at = ? WHERE id = ?",
                (new, now_iso(), ident),
            )
            self._store.audit(
                conn, actor=actor, action="instance.desired", target=ident, old=old, new=new
            )

    def remove(self, ident: str, port: int, config: Config, *, actor: str) -> None:
        with self._store.transaction() as conn:
            conn.execute("DELETE FROM instances WHERE id = ?", (ident,))
            conn.execute("DELETE FROM processes WHERE instance_id = ?", (ident,))
            self._store.audit(
                conn,
                actor=actor,
                action="instance.delete",
                target=ident,
                old={"port": port, **config},
            )

    # -- processes ----------------------------------------------------------------------

    def record_process(self, ident: str, row: ProcessRow, port: int) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO processes "
                "(instance_id, pid, pgid, create_time, mark, port, started_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (ident, row.pid, row.pgid, row.create_time, row.mark, port, now_iso()),
            )

    def forget_process(self, ident: str) -> None:
        with self._store.transaction() as conn:
            conn.execute("DELETE FROM processes WHERE instance_id = ?", (ident,))

    def processes(self) -> list[ProcessRow]:
        rows = self._store.query("SELECT instance_id, pid, pgid, create_time, mark FROM processes")
        return [ProcessRow(r[0], r[1], r[2], r[3], r[4]) for r in rows]
