"""The ``requests`` table: one row per gateway request, written in batches off the hot path.

Plain data in and out: rows are mappings of column values, results are this module's frozen
dataclasses. What a row means (an outcome, a success) is the figures' business, not the
store's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from modelyard.store.db import Store

COLUMNS = (
    "request_id",
    "model_id",
    "instance_id",
    "route",
    "endpoint",
    "started_at",
    "ttft_s",
    "latency_s",
    "tokens_in",
    "tokens_out",
    "tokens_per_s",
    "outcome",
    "status",
    "error",
    "stream",
)
_INSERT = (
    f"INSERT INTO requests ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(':' + column for column in COLUMNS)})"
)


@dataclass(frozen=True)
class GroupTotals:
    """Stored counts for one (model, instance, endpoint, outcome)."""

    model_id: str | None
    instance_id: str | None
    endpoint: str
    outcome: str
    requests: int
    tokens_in: int
    tokens_out: int
    last_at: float


@dataclass(frozen=True)
class SampleRow:
    """The timings of one stored request."""

    ttft_s: float | None
    latency_s: float
    tokens_per_s: float | None
    outcome: str


@dataclass(frozen=True)
class HistoryRow:
    started_at: float
    outcome: str
    ttft_s: float | None
    tokens_per_s: float | None


@dataclass(frozen=True)
class Refused:
    """A row SQLite would not take, and why."""

    index: int
    reason: str


# What one row's values can make SQLite refuse: text it cannot encode (a lone surrogate),
# a value of a type or size it cannot bind, a missing column, a NOT NULL column left empty.
_BAD_ROW = (
    UnicodeEncodeError,
    OverflowError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.IntegrityError,
)


def insert(store: Store, rows: Iterable[Mapping[str, object]]) -> list[Refused]:
    """Write ``rows`` (each with a value for every name in ``COLUMNS``; other keys are
    ignored) in one transaction, and return the rows left out: a row SQLite refuses for its
    own values is left out alone (a bad record once made the whole batch fail, and its good
    records were lost). Raises StoreUnwritable when the store refuses the write: then none
    lands."""
    refused = []
    with store.transaction() as conn:
        for index, row in enumerate(rows):
            try:
                conn.execute(_INSERT, row)
            except _BAD_ROW as exc:  # nothing of this row was written; the others go on
                refused.append(Refused(index, f"{type(exc).__name__}: {exc}"))
    return refused


def group_totals(store: Store) -> list[GroupTotals]:
    """Counts per (model, instance, endpoint, outcome) over every stored request."""
    rows = store.query(
        "SELECT model_id, instance_id, endpoint, outcome, COUNT(*) AS n, "
        "COALESCE(SUM(tokens_in), 0) AS tin, COALESCE(SUM(tokens_out), 0) AS tout, "
        "MAX(started_at) AS last_at FROM requests "
        "GROUP BY model_id, instance_id, endpoint, outcome"
    )
    return [
        GroupTotals(
            model_id=row["model_id"],
            instance_id=row["instance_id"],
            endpoint=row["endpoint"],
            outcome=row["outcome"],
            requests=row["n"],
            tokens_in=row["tin"],
            tokens_out=row["tout"],
            last_at=row["last_at"],
        )
        for row in rows
    ]


def latest_samples(
    store: Store, key: Literal["model_id", "instance_id"] | None, limit: int
) -> dict[str | None, list[SampleRow]]:
    """The latest ``limit`` samples per model, per instance, or overall (key ``None``), oldest
    first."""
    partition = f"PARTITION BY {key}" if key else ""
    where = f"WHERE {key} IS NOT NULL" if key else ""
    select_key = key or "NULL"
    rows = store.query(
        f"SELECT k, ttft_s, latency_s, tokens_per_s, outcome FROM ("
        f" SELECT {select_key} AS k, ttft_s, latency_s, tokens_per_s, outcome, started_at,"
        f" ROW_NUMBER() OVER ({partition} ORDER BY started_at DESC, id DESC) AS rn"
        f" FROM requests {where}) WHERE rn <= ? ORDER BY started_at, rn DESC",
        (limit,),
    )
    out: dict[str | None, list[SampleRow]] = {}
    for row in rows:
        out.setdefault(row["k"], []).append(
            SampleRow(
                ttft_s=row["ttft_s"],
                latency_s=row["latency_s"],
                tokens_per_s=row["tokens_per_s"],
                outcome=row["outcome"],
            )
        )
    return out


def history_rows(store: Store, model_id: str | None, since: float) -> list[HistoryRow]:
    """Requests started at or after ``since`` (for one model, or all), in time order."""
    sql = "SELECT started_at, outcome, ttft_s, tokens_per_s FROM requests WHERE started_at >= ?"
    params: tuple[object, ...] = (since,)
    if model_id is not None:
        sql += " AND model_id = ?"
        params = (since, model_id)
    rows = store.query(sql + " ORDER BY started_at", params)
    return [
        HistoryRow(
            started_at=row["started_at"],
            outcome=row["outcome"],
            ttft_s=row["ttft_s"],
            tokens_per_s=row["tokens_per_s"],
        )
        for row in rows
    ]
