"""Faults in the store: a database that cannot be written, a record it refuses.

The app runs on a real port (``tests.gateway.harness.running``) over a real SQLite store, with
the fake backend as a ``command`` instance. The store is made unwritable with ``chattr +i``
on the database and its WAL (as root, on this ext4): reads go on, and every commit fails with
SQLITE_IOERR_WRITE, as on a disk that fails or is remounted read-only. ``unwritable`` undoes
it however the block ends.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.errors import BadRequest, Conflict, StoreError, StoreUnwritable
from modelyard.figures.record import Outcome, RequestKind, RequestRecord
from modelyard.figures.service import Figures
from modelyard.settings import load_settings
from modelyard.store import Store
from tests.gateway.harness import fake_model, gateway_settings, running

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


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


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


async def test_a_bad_record_is_dropped_alone_from_its_batch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Prevents: one request naming ``"model": "\\ud800"`` (a lone surrogate: answered 404,
    but its figure cannot be encoded for SQLite) making the whole flush batch fail, so the
    good requests of that second were never stored. Through the real gateway: the bad
    figure is dropped alone, logged, and counted as dropped."""
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
        assert reply.status_code == 404, reply.text
        assert reply.json()["error"]["code"] == "model_not_found"
        for i in range(5):
            reply = await client.post("/v1/chat/completions", json={**CHAT, "model": "fake"})
            assert reply.status_code == 200, (i, reply.text)
        assert figures.pending == 11
        assert await figures.flush() == 10
        assert (figures.pending, figures.dropped) == (0, 1)
        rows = read_db(settings.db_path, "SELECT model_id, status FROM requests")
        assert sorted(rows) == [("fake", 200)] * 10
        logged = (settings.logs_dir / "requests.jsonl").read_text().splitlines()
        assert len(logged) == 10
    dropped = messages(caplog, "dropped, the store refused it")
    assert len(dropped) == 1 and "\\ud800" in dropped[0], dropped


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
