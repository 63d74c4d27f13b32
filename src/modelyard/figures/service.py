"""Per-request figures: counted in memory on the hot path, written to disk off it.

The gateway calls ``Figures.record`` once per finished request. That call updates the
in-memory aggregates (per model, per instance, overall) and appends the record to a
buffer; it never touches the disk. A background task started by ``start()`` writes the
buffer to the store (one transaction per batch) and to the JSONL request log every
``figures.flush_interval_s`` and once more on ``aclose()``.

``snapshot()`` and ``render_metrics()`` read the aggregates; ``history()`` and
``load_totals()`` read the store. Everything but ``history()`` and ``load_totals()`` must run
on one thread: the event loop's, in the server.

    figures = Figures(settings, store, in_flight=counts)  # counts() -> {instance id: n}
    await figures.start()          # loads stored totals, starts the flush task
    figures.record(rec)            # O(1), never blocks
    await figures.aclose()         # final flush; records after this are not written
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from modelyard.errors import StoreError, ValidationFailed
from modelyard.figures import aggregate
from modelyard.figures.aggregate import Aggregate, CounterKey, Sample, Totals
from modelyard.figures.record import Outcome, RequestRecord
from modelyard.figures.request_log import RequestLog
from modelyard.settings import Settings
from modelyard.store import Store
from modelyard.store import requests as requests_table

logger = logging.getLogger(__name__)

HISTORY_DEFAULT_S = 24 * 3600.0
HISTORY_MIN_BUCKET_S = 1.0  # below it, started_at // bucket_s overflowed (5e-324: a 500)


@dataclass(frozen=True)
class _StoredHistory:
    """What ``load_totals`` reads from the store, before it is applied in memory."""

    groups: list[requests_table.GroupTotals]
    overall: list[Sample]
    by_model: dict[str | None, list[Sample]]
    by_instance: dict[str | None, list[Sample]]


def _nothing_in_flight() -> Mapping[str, int]:
    return {}


class Figures:
    """The figures service. Built once by the composition root; see the module docstring.

    ``in_flight`` gives the requests in flight per instance id; it is called at each metrics
    scrape, on the event loop's thread, and feeds the ``modelyard_in_flight`` gauge.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        in_flight: Callable[[], Mapping[str, int]] = _nothing_in_flight,
    ) -> None:
        conf = settings.figures
        self._store = store
        self._reservoir = conf.reservoir
        self._buffer_max = conf.buffer_max
        self._interval = conf.flush_interval_s
        self._log = (
            RequestLog(
                settings.logs_dir / "requests.jsonl",
                max_bytes=conf.request_log_max_bytes,
                backups=conf.request_log_backups,
            )
            if conf.request_log
            else None
        )
        self._buffer: list[RequestRecord] = []
        self._dropped = 0
        self._in_flight = in_flight
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._flush_lock: asyncio.Lock | None = None
        self._reset()

    def _reset(self) -> None:
        self._total = Aggregate(self._reservoir)
        self.models: dict[str, Aggregate] = {}
        self._instances: dict[str, Aggregate] = {}
        self._instance_model: dict[str, str] = {}
        self.counts: dict[CounterKey, int] = {}

    # -- the hot path ---------------------------------------------------------------------

    def record(self, rec: RequestRecord) -> None:
        """Count one finished request and queue it for writing. O(1); never blocks or raises.

        When the write buffer is full (the store is failing), the record is still counted in
        memory but not written, and ``dropped`` grows.
        """
        if len(self._buffer) < self._buffer_max:
            self._buffer.append(rec)
        else:
            self._dropped += 1
        self._count(rec)

    def _count(self, rec: RequestRecord) -> None:
        self._total.add(rec)
        model_id, instance_id = rec.model_id, rec.instance_id
        if model_id is not None:
            self._aggregate(self.models, model_id).add(rec)
            if instance_id is not None:
                self._instance_model[instance_id] = model_id
                self._aggregate(self._instances, instance_id).add(rec)
        key = (model_id or "", instance_id or "", rec.endpoint, rec.outcome)
        self.counts[key] = self.counts.get(key, 0) + 1

    def _aggregate(self, table: dict[str, Aggregate], key: str) -> Aggregate:
        agg = table.get(key)
        if agg is None:
            agg = table[key] = Aggregate(self._reservoir)
        return agg

    @property
    def pending(self) -> int:
        """Records recorded but not yet written."""
        return len(self._buffer)

    @property
    def dropped(self) -> int:
        """Records never written: the buffer was full, or the store refused their values."""
        return self._dropped

    # -- reading --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The in-memory figures, JSON-ready.

        ``{"total": stats, "models": {model_id: {**stats, "instances": {id: stats}}},
        "pending": n, "dropped": n}`` where stats holds requests, successes, errors,
        cancelled, success_rate, ttft_p50_s, ttft_p95_s, latency_p50_s, latency_p95_s,
        tokens_in, tokens_out, tokens_per_s (mean) and last_request_at (unix time).
        Percentiles are over the latest ``figures.reservoir`` samples per key.
        """
        models: dict[str, dict[str, Any]] = {
            model_id: {**agg.stats(), "instances": {}}
            for model_id, agg in sorted(self.models.items())
        }
        for instance_id, agg in sorted(self._instances.items()):
            models[self._instance_model[instance_id]]["instances"][instance_id] = agg.stats()
        return {
            "total": self._total.stats(),
            "models": models,
            "pending": self.pending,
            "dropped": self._dropped,
        }

    def render_metrics(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type. Call on the loop's thread.

        prometheus_client is imported on the first call (once, about 10 ms): a server nobody
        scrapes does not carry its 11 MB.
        """
        from modelyard.figures.exposition import Scrape, render

        return render(
            Scrape(
                counts=self.counts,
                models=self.models,
                in_flight=self._in_flight(),
                pending=self.pending,
                dropped=self._dropped,
            )
        )

    def history(
        self, model_id: str | None = None, since: float | None = None, bucket_s: float = 60
    ) -> list[dict[str, Any]]:
        """Stored requests in time buckets, oldest first, for charts. Blocks on the store.

        One entry per non-empty bucket since ``since`` (unix time; default the last 24 h),
        for one model or all: ``start`` (unix time), requests, successes, success_rate,
        ttft_p50_s, tokens_per_s (mean). Records not yet flushed are not included.
        Raises ValidationFailed if ``bucket_s`` is under one second (or not a number).
        """
        if not bucket_s >= HISTORY_MIN_BUCKET_S:
            raise ValidationFailed(
                f"bucket_s must be at least {HISTORY_MIN_BUCKET_S:g} second, got {bucket_s!r}",
                param="bucket_s",
            )
        start = time.time() - HISTORY_DEFAULT_S if since is None else since
        buckets: dict[int, list[requests_table.HistoryRow]] = {}
        for row in requests_table.history_rows(self._store, model_id, start):
            buckets.setdefault(int(row.started_at // bucket_s), []).append(row)
        return [_bucket(index * bucket_s, rows) for index, rows in sorted(buckets.items())]

    # -- persistence ----------------------------------------------------------------------

    def load_totals(self) -> None:
        """Replace the in-memory figures by the store's, plus the records not yet written.

        Blocks on the store. Call it before the flush task runs (``start()`` does), or from
        a process that records nothing (``modelyard stats``).
        """
        self._apply(self._read_stored())

    def _read_stored(self) -> _StoredHistory:
        store, n = self._store, self._reservoir
        overall = requests_table.latest_samples(store, None, n).get(None, [])
        by_model = requests_table.latest_samples(store, "model_id", n)
        by_instance = requests_table.latest_samples(store, "instance_id", n)
        return _StoredHistory(
            groups=requests_table.group_totals(store),
            overall=_samples(overall),
            by_model={key: _samples(rows) for key, rows in by_model.items()},
            by_instance={key: _samples(rows) for key, rows in by_instance.items()},
        )

    def _apply(self, stored: _StoredHistory) -> None:
        self._reset()
        for group in stored.groups:
            totals = _totals(group)
            self._total.seed_totals(totals)
            if group.model_id is not None:
                self._aggregate(self.models, group.model_id).seed_totals(totals)
                if group.instance_id is not None:
                    self._instance_model[group.instance_id] = group.model_id
                    self._aggregate(self._instances, group.instance_id).seed_totals(totals)
            key = (group.model_id or "", group.instance_id or "", group.endpoint, group.outcome)
            self.counts[key] = self.counts.get(key, 0) + group.requests
        self._total.seed_samples(stored.overall)
        for model_id, agg in self.models.items():
            agg.seed_samples(stored.by_model.get(model_id, []))
        for instance_id, agg in self._instances.items():
            agg.seed_samples(stored.by_instance.get(instance_id, []))
        for rec in self._buffer:
            self._count(rec)

    async def start(self) -> None:
        """Load the stored totals, then start the flush task. Raises StoreError if the store
        cannot be read."""
        if self._task is not None:
            return
        self._apply(await asyncio.to_thread(self._read_stored))
        self._stop = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._task = asyncio.create_task(self._run(), name="figures-flush")

    async def aclose(self) -> None:
        """Stop the flush task after a last flush. Idempotent; safe without ``start()``."""
        if self._task is not None and self._stop is not None:
            self._stop.set()
            await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)
            try:
                await self.flush()
            except Exception:  # the task must outlive a bug in one batch
                logger.exception("writing request figures failed")

    async def flush(self) -> int:
        """Write what is buffered now; return how many records were written.

        On a store error the batch goes back to the buffer (oldest dropped past
        ``figures.buffer_max``) and 0 is returned; a request-log error is logged only, so a
        batch is never stored twice. A record the store refuses for its own values (text
        that is not valid Unicode) is dropped alone, logged, and counted in ``dropped``.
        """
        lock = self._flush_lock or asyncio.Lock()
        async with lock:
            batch, self._buffer = self._buffer, []
            if not batch:
                return 0
            try:
                written = await asyncio.to_thread(self._write, batch)
            except StoreError as exc:
                logger.warning("request figures not stored yet (%s); will retry", exc)
                kept = batch + self._buffer
                overflow = max(0, len(kept) - self._buffer_max)
                self._dropped += overflow
                self._buffer = kept[overflow:]
                return 0
            self._dropped += len(batch) - written
            return written

    def _write(self, batch: list[RequestRecord]) -> int:
        """Store the batch, then log it; returns how many records were stored."""
        rows = [rec.to_json() for rec in batch]  # one row per record, the log line's keys
        refused = requests_table.insert(self._store, rows)
        for bad in refused:
            logger.warning(
                "request figure %s dropped, the store refused it: %s",
                ascii(rows[bad.index].get("request_id")),
                ascii(bad.reason),  # the bad text itself cannot be encoded either
            )
        left_out = {bad.index for bad in refused}
        rows = [row for index, row in enumerate(rows) if index not in left_out]
        if self._log is not None:
            try:
                self._log.write(rows)
            except OSError as exc:
                logger.warning("request log %s not written: %s", self._log.path, exc)
        return len(rows)


def _totals(group: requests_table.GroupTotals) -> Totals:
    return Totals(
        requests=group.requests,
        successes=group.requests if group.outcome == Outcome.OK else 0,
        cancelled=group.requests if group.outcome == Outcome.CANCELLED else 0,
        tokens_in=group.tokens_in,
        tokens_out=group.tokens_out,
        last_at=group.last_at,
    )


def _samples(rows: Iterable[requests_table.SampleRow]) -> list[Sample]:
    return [
        Sample(
            ttft_s=r.ttft_s,
            latency_s=r.latency_s,
            tokens_per_s=r.tokens_per_s,
            ok=r.outcome == Outcome.OK,
        )
        for r in rows
    ]


def _bucket(start: float, rows: list[requests_table.HistoryRow]) -> dict[str, Any]:
    finished = [r for r in rows if r.outcome != Outcome.CANCELLED]
    successes = sum(1 for r in finished if r.outcome == Outcome.OK)
    ttft = sorted(r.ttft_s for r in rows if r.ttft_s is not None)
    tps = [r.tokens_per_s for r in rows if r.tokens_per_s is not None]
    return {
        "start": start,
        "requests": len(rows),
        "successes": successes,
        "success_rate": successes / len(finished) if finished else None,
        "ttft_p50_s": aggregate.percentile(ttft, 0.5),
        "tokens_per_s": sum(tps) / len(tps) if tps else None,
    }
