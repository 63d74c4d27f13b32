"""Faults in the store: a database that cannot be written, a record it refuses.

The app runs on a real port (``tests.gateway.harness.running``) over a real SQLite store, with
the fake backend as a ``command`` instance. The store is made unwritable with ``chattr +i``
on the database and its WAL (as root, on this ext4): reads go on, and every commit fails with
SQLITE_IOERR_WRITE, as on a disk that fails or is remounted read-only. ``unwritable`` undoes
it however the block ends.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.engines.base import LaunchPlan
from modelyard.errors import BadRequest, Conflict, StoreError, StoreUnwritable
from modelyard.figures.record import Outcome, RequestKind, RequestRecord
from modelyard.figures.service import Figures
from modelyard.fleet.logs import InstanceLog
from modelyard.fleet.process import ManagedProcess, ProcessStatus, State
from modelyard.settings import load_settings
from modelyard.store import Store
from modelyard.upstream import UpstreamPool
from tests.gateway.harness import FAKE_BACKEND, fake_model, gateway_settings, running
from tests.support.processes import free_port, wait_for

CHAT: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}
LONE_SURROGATE = "\ud800"
WAIT_S = 20.0


@contextmanager
def unwritable(db: Path) -> Iterator[None]:
    """The store's files immutable for the block (``chattr +i``), then writable again."""
    files = [str(db), str(db.with_name(db.name + "-wal"))]
    assert all(Path(name).exists() for name in files), files
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr is not installed")
    made = subprocess.run([chattr, "+i", *files], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"chattr +i is refused here: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", *files], check=True)


def read_db(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows from the store through a connection of the test's own, read-only."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return list(conn.execute(sql, params).fetchall())


def stored_pid(db: Path, ident: str) -> int | None:
    rows = read_db(db, "SELECT pid FROM processes WHERE instance_id = ?", (ident,))
    return int(rows[0][0]) if rows else None


def stored_desired(db: Path, ident: str) -> str:
    return str(read_db(db, "SELECT desired FROM instances WHERE id = ?", (ident,))[0][0])


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


async def test_supervision_survives_an_unwritable_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Prevents: a refused write of the ``processes`` row (on a stop or a crash) ending the
    instance's owner task, which left it ``ready``/``stopping`` with ``pid: null``, chat
    answering 502/503 and start/stop/restart "instance ... is closed" for ever, even once the
    store was writable again, with nothing logged."""
    caplog.set_level(logging.INFO, logger="modelyard")
    settings = gateway_settings(tmp_path, curated=[fake_model("fake")])
    db = settings.db_path
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        fleet = gw.services.fleet
        [created] = (await client.post("/api/instances", json={"model": "fake"})).json()
        ident = created["id"]
        chat = {**CHAT, "model": ident}
        assert (await client.post(f"/api/instances/{ident}/start")).status_code == 200
        first = fleet.get(ident).pid
        assert first is not None and stored_pid(db, ident) == first
        with unwritable(db):
            stopped = await client.post(f"/api/instances/{ident}/stop")
            assert stopped.status_code == 200, stopped.text
            assert (stopped.json()["state"], stopped.json()["pid"]) == ("stopped", None)
            assert stopped.json()["desired"] == "stopped"  # in memory; kept for the store

            served = await client.post("/v1/chat/completions", json=chat)
            assert served.status_code == 200, served.text  # the gateway started it again
            crashed = fleet.get(ident).pid
            assert crashed is not None
            os.kill(crashed, signal.SIGKILL)
            await wait_for(
                lambda: fleet.get(ident).restarts == 1 and fleet.get(ident).state == "ready",
                WAIT_S,
                "the supervised restart after the crash",
            )
            assert fleet.get(ident).pid not in (None, crashed)
            served = await client.post("/v1/chat/completions", json=chat)
            assert served.status_code == 200, served.text

            for action, state in (("restart", "ready"), ("stop", "stopped"), ("start", "ready")):
                reply = await client.post(f"/api/instances/{ident}/{action}")
                assert reply.status_code == 200, (action, reply.text)
                assert reply.json()["state"] == state, action
            assert "failed, retrying" in "\n".join(fleet.logs(ident))
            assert stored_pid(db, ident) == first  # nothing reached the store meanwhile

        live = fleet.get(ident).pid
        await wait_for(
            lambda: stored_pid(db, ident) == live and stored_desired(db, ident) == "running",
            WAIT_S,
            "the kept writes to land once the store is writable",
        )
        for action, state in (("stop", "stopped"), ("start", "ready"), ("restart", "ready")):
            reply = await client.post(f"/api/instances/{ident}/{action}")
            assert reply.status_code == 200, (action, reply.text)
            assert reply.json()["state"] == state, action
        assert stored_pid(db, ident) == fleet.get(ident).pid  # written straight away now
        served = await client.post("/v1/chat/completions", json=chat)
        assert served.status_code == 200, served.text
    refused = messages(caplog, "cannot be written")
    assert any(f"forgetting the process of {ident}" in m for m in refused), refused
    assert any(f"recording pid {crashed} of {ident}" in m for m in refused), refused
    assert any(f"desired state of {ident} (stopped)" in m for m in refused), refused
    assert messages(caplog, "written now that the store can be written")


async def test_api_writes_answer_503_json_while_v1_goes_on_serving(tmp_path: Path) -> None:
    """Prevents: ``/api`` writes over an unwritable store answering a plain-text "Internal
    Server Error" (SQLite's error escaping the routes) instead of the documented JSON error,
    and a change half-made in memory; ``/v1`` must go on serving meanwhile."""
    settings = gateway_settings(tmp_path, curated=[fake_model("fake")])
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        [created] = (await client.post("/api/instances", json={"model": "fake"})).json()
        ident = created["id"]
        assert (await client.post(f"/api/instances/{ident}/start")).status_code == 200
        writes: list[tuple[str, str, dict[str, Any]]] = [
            ("PATCH", f"/api/instances/{ident}", {"display_name": "Renamed"}),
            ("POST", "/api/instances", {"model": "fake"}),
            ("PUT", "/api/models/fake/tier", {"tier": "powerful"}),
            ("POST", "/api/instances/presets", {"name": "terse", "title": "T", "prompt": "Be."}),
        ]
        with unwritable(settings.db_path):
            for method, path, body in writes:
                reply = await client.request(method, path, json=body)
                assert reply.status_code == 503, (method, path, reply.text)
                assert reply.headers["content-type"] == "application/json"
                error = reply.json()["error"]
                assert error["code"] == "store_unwritable", error
                assert "cannot be written" in error["message"], error
                assert "nothing was changed" in error["message"], error
            served = await client.post("/v1/chat/completions", json={**CHAT, "model": ident})
            assert served.status_code == 200, served.text
            assert served.json()["choices"][0]["message"]["content"].startswith("tok0")
            listed = (await client.get("/api/instances")).json()
            assert [(i["id"], i["config"]["display_name"]) for i in listed] == [(ident, None)]
            tier = (await client.get("/api/models/registry")).json()["models"][0]["tier"]
            assert tier != "powerful"
        for method, path, body in writes:  # the same writes land once the store is back
            reply = await client.request(method, path, json=body)
            assert reply.status_code in (200, 201), (method, path, reply.text)
        renamed = (await client.get(f"/api/instances/{ident}")).json()
        assert renamed["config"]["display_name"] == "Renamed"


async def test_a_lone_surrogate_never_costs_a_batch_of_figures(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Prevents: one request naming ``"model": "\\ud800"`` (a lone surrogate: answered 404,
    but its figure could not be encoded for SQLite) making the whole flush batch fail, so the
    good requests of that second were never stored. Through the real gateway the request is
    now refused at parsing (400 naming the field), and its figure, holding only escaped text,
    is stored with the ten good ones: nothing is dropped. A record SQLite does refuse is
    dropped alone (the next test)."""
    caplog.set_level(logging.WARNING, logger="modelyard")
    settings = gateway_settings(
        tmp_path,
        curated=[fake_model("fake")],
        figures={"request_log": True, "flush_interval_s": 3600.0},  # one batch: ours
    )
    async with running(settings) as gw, httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        figures = gw.services.figures
        await figures.flush()  # nothing of the start-up left in the buffer
        for i in range(5):
            reply = await client.post("/v1/chat/completions", json={**CHAT, "model": "fake"})
            assert reply.status_code == 200, (i, reply.text)
        bad = b'{"model": "\\ud800", "messages": [{"role": "user", "content": "hi"}]}'
        reply = await client.post(
            "/v1/chat/completions", content=bad, headers={"content-type": "application/json"}
        )
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["param"] == "model"
        for i in range(5):
            reply = await client.post("/v1/chat/completions", json={**CHAT, "model": "fake"})
            assert reply.status_code == 200, (i, reply.text)
        assert figures.pending == 11
        assert await figures.flush() == 11
        assert (figures.pending, figures.dropped) == (0, 0)
        rows = read_db(settings.db_path, "SELECT model_id, status FROM requests")
        assert sorted(rows, key=str) == sorted([("fake", 200)] * 10 + [(None, 400)], key=str)
        logged = (settings.logs_dir / "requests.jsonl").read_text().splitlines()
        assert len(logged) == 11
    assert messages(caplog, "dropped, the store refused it") == []


async def test_store_keeps_the_good_records_of_a_batch_with_a_bad_one(tmp_path: Path) -> None:
    """Prevents: the figures' batched write losing ten good records for one with a lone
    surrogate in a text field; the store write itself leaves the bad row out alone."""
    settings = load_settings(
        data_dir=tmp_path / "data",
        discovery={"default_model": False},
        figures={"request_log": False, "flush_interval_s": 3600.0},
    )
    store = Store.open(settings.db_path)
    try:
        figures = Figures(settings, store)
        for i in range(10):
            figures.record(_record(f"good{i}", model_id="m1", error=None))
            if i == 4:
                error = f"no model '{LONE_SURROGATE}'"
                figures.record(_record("bad", model_id=LONE_SURROGATE, error=error))
        assert await figures.flush() == 10
        assert figures.dropped == 1
        stored = [r["request_id"] for r in store.query("SELECT request_id FROM requests")]
        assert sorted(stored) == sorted(f"good{i}" for i in range(10))
    finally:
        store.close()


def _record(request_id: str, *, model_id: str, error: str | None) -> RequestRecord:
    return RequestRecord(
        request_id=request_id,
        model_id=model_id,
        instance_id=None,
        route="model",
        endpoint=RequestKind.CHAT,
        started_at=1_700_000_000.0,
        ttft_s=None,
        latency_s=0.01,
        tokens_in=None,
        tokens_out=None,
        outcome=Outcome.OK if error is None else Outcome.ERROR,
        status=200 if error is None else 404,
        error=error,
        stream=False,
    )


class _FailingHooks:
    """Hooks that fail as a refused store write (or a bug) would, every time."""

    def __init__(self) -> None:
        self.states: list[State] = []

    def changed(self, status: ProcessStatus) -> None:
        self.states.append(status.state)
        if status.state == State.STOPPING:
            raise RuntimeError("a listener's bug")

    async def spawned(self, status: ProcessStatus) -> None:
        raise StoreUnwritable("the store cannot be written (disk I/O error)")

    async def exited(self) -> None:
        raise StoreUnwritable("the store cannot be written (disk I/O error)")


async def test_a_failing_hook_never_ends_the_process_owner(tmp_path: Path) -> None:
    """Prevents: an exception from a process hook (the store write in ``exited``) ending the
    ``ManagedProcess`` owner task, after which every start and stop of the instance answered
    "instance ... is closed"."""
    settings = load_settings(
        data_dir=tmp_path / "data",
        discovery={"default_model": False},
        fleet={"restart_backoff_s": 0.05, "stop_timeout_s": 2.0},
    )
    port = free_port()
    plan = LaunchPlan(
        argv=(sys.executable, str(FAKE_BACKEND), "--port", str(port)),
        base_url=f"http://127.0.0.1:{port}",
    )
    log = InstanceLog(tmp_path / "fake.log", max_bytes=1 << 20, backups=0, tail_lines=200)
    hooks = _FailingHooks()
    pool = UpstreamPool(connect_s=5.0)
    process = ManagedProcess("fake:01", settings.fleet, log, pool, hooks)
    try:
        first = await process.start(plan)
        assert first.state == State.READY and first.pid is not None
        stopped = await process.stop()
        assert (stopped.state, stopped.pid) == (State.STOPPED, None)
        again = await process.start(plan)
        assert again.state == State.READY and again.pid not in (None, first.pid)
        assert again.pid is not None
        os.kill(again.pid, signal.SIGKILL)
        await wait_for(
            lambda: process.status().restarts == 1 and process.status().state == State.READY,
            WAIT_S,
            "the supervised restart",
        )
        assert process.status().pid not in (None, again.pid)
        tail = "\n".join(log.tail())
        assert "internal error after exited" in tail and "internal error after spawned" in tail
        assert State.STOPPING in hooks.states
    finally:
        await process.aclose()
        await pool.aclose()
    assert process.status().state == State.STOPPED


def test_store_translates_sqlites_errors_and_stays_usable(tmp_path: Path) -> None:
    """Prevents: SQLite's own exceptions escaping the store (a plain-text 500 on ``/api``, a
    dead task elsewhere) and a failed write leaving the connection unusable afterwards."""
    store = Store.open(tmp_path / "data" / "modelyard.db")
    insert = "INSERT INTO scratch (name, data) VALUES (?, ?)"
    try:
        with store.transaction() as conn:
            conn.execute("CREATE TABLE scratch (name TEXT PRIMARY KEY, data TEXT NOT NULL)")
            conn.execute(insert, ("kept", "{}"))
        refused = pytest.raises(BadRequest, match=r"not valid Unicode \('\\ud800'\)")
        with refused, store.transaction() as conn:
            conn.execute(insert, ("odd", LONE_SURROGATE))
        with pytest.raises(Conflict, match="UNIQUE constraint failed"), store.transaction() as conn:
            conn.execute(insert, ("kept", "{}"))
        with unwritable(store.path or Path()):
            unwritten = pytest.raises(StoreUnwritable, match=r"cannot be written.*nothing was")
            with unwritten, store.transaction() as conn:
                conn.execute(insert, ("refused", "{}"))
            assert [r["name"] for r in store.query("SELECT name FROM scratch")] == ["kept"]
        with store.transaction() as conn:  # the same connection, writable again
            conn.execute(insert, ("later", "{}"))
        names = sorted(r["name"] for r in store.query("SELECT name FROM scratch"))
        assert names == ["kept", "later"]
    finally:
        store.close()
    with pytest.raises(StoreError, match="cannot be read"):
        store.query("SELECT name FROM scratch")
