"""``RequestStats``: every finished request, counted per minute into ``routeiq_request_minutes``.

``record`` is synchronous and O(1) on the request path: it adds the request to an
in-memory cell per (minute, model, endpoint, status) holding a count, a latency sum and
a fixed-bucket latency histogram (``app.access.latency_histogram``). Every
``interval_s`` the flusher adds the cells to the table (``AccessStore.add_request_minutes``,
an upsert-add, so replicas' rows merge) in batches of one transaction each, and starts
new cells. While the database is down the cells stay and keep counting (bounded:
past ``max_cells`` the oldest cell is dropped, its requests counted and logged), and
are added when it is back; ``close`` flushes what is left. A row the database refuses
anyway (a data error) is isolated by ``write_isolating``, logged and dropped. The
flush loop and the isolation are the spend buffer's (``app.access.flusher``).
Must not: block or raise in ``record``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.access.dberrors import StoreDataError
from app.access.flusher import PeriodicFlusher, write_isolating
from app.access.latency_histogram import COLUMNS, N_BUCKETS, bucket_of
from app.access.store import AccessStore

log = logging.getLogger("routeiq.access.requests")
BATCH = 500
Key = tuple[int, str, str, int]
"""(minute as epoch seconds, model, endpoint, status)."""


@dataclass
class Cell:
    """One row's worth of counts: requests, their latency sum and histogram."""

    requests: int = 0
    latency_ms_sum: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * N_BUCKETS)

    def add(self, ms: float) -> None:
        self.requests += 1
        self.latency_ms_sum += ms if ms > 0 else 0.0
        self.buckets[bucket_of(ms)] += 1

    def merge(self, other: Cell) -> None:
        self.requests += other.requests
        self.latency_ms_sum += other.latency_ms_sum
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]

    def row(self, key: Key) -> dict[str, Any]:
        minute, model, endpoint, status = key
        return {"minute": datetime.fromtimestamp(minute, UTC), "model": model, "endpoint": endpoint,
                "status": status, "requests": self.requests, "latency_ms_sum": self.latency_ms_sum,
                **dict(zip(COLUMNS, self.buckets, strict=True))}


class RequestStats(PeriodicFlusher):
    _what = "request counts"

    def __init__(self, store: AccessStore, interval_s: float = 5.0, max_cells: int = 20_000) -> None:
        super().__init__(interval_s)
        self.store = store
        self._cells: dict[Key, Cell] = {}
        self._max = max_cells
        self._lock = asyncio.Lock()
        self._in_flight = 0
        self._outage_since: float | None = None
        self._schema_ok = False
        self.written = self.dropped = self.dead_lettered = self.failures = 0
        """Rows added; requests dropped (buffer full) or refused by the database; failed flushes."""

    @property
    def pending(self) -> int:
        """Cells not in the table yet (one per minute, model, endpoint and status)."""
        return len(self._cells) + self._in_flight

    def stats(self) -> dict[str, int]:
        return {"pending": self.pending, "written": self.written, "dropped": self.dropped,
                "dead_lettered": self.dead_lettered, "flush_failures": self.failures}

    def record(self, *, endpoint: str, model: str, status: int, seconds: float, at: float | None = None) -> None:
        """Count one finished request (``at``: when it finished, epoch seconds; default now)."""
        try:
            key = (int(at if at is not None else time.time()) // 60 * 60, model[:256], endpoint[:64], int(status))
            cell = self._cells.get(key)
            if cell is None:
                cell = self._cells[key] = Cell()
                self._trim()
            cell.add(seconds * 1000)
        except Exception as err:  # noqa: BLE001  (counting must never fail the request)
            log.warning("request not counted: %s", type(err).__name__)

    def _trim(self) -> None:
        """Drop the oldest cells past the bound (dict order is insertion order: oldest first)."""
        while len(self._cells) > self._max:
            lost = self._cells.pop(next(iter(self._cells)))
            self.dropped += lost.requests
            if self.dropped == lost.requests or self.dropped // 1000 != (self.dropped - lost.requests) // 1000:
                log.error("request stats buffer full (%d cells): dropped %d requests so far", self._max,
                          self.dropped)

    # lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self.start_flusher("routeiq-request-stats-flusher")

    async def close(self, timeout_s: float = 10.0) -> None:
        """Stop the flusher and write what is pending (best effort within ``timeout_s``)."""
        await self.stop_and_drain(timeout_s)

    # writing -----------------------------------------------------------------------------
    async def flush(self) -> bool:
        """Add every cell to the table; ``False`` if the database is unreachable (cells kept)."""
        async with self._lock:
            items, self._cells = list(self._cells.items()), {}
            for lo in range(0, len(items), BATCH):
                batch = items[lo:lo + BATCH]
                self._in_flight = len(items) - lo
                try:
                    done = await write_isolating(batch, self._write, self._dead_letter)
                except BaseException:  # cancelled mid-write: keep the rest (this batch rolled back)
                    self._put_back(items[lo:])
                    raise
                finally:
                    self._in_flight = 0
                self.written += done.written
                if done.error is not None:
                    self._put_back(done.unwritten + items[lo + BATCH:])
                    self._failed(done.error)
                    return False
            if self._outage_since is not None:
                log.warning("request stats database back after %.1f s; counts flushed",
                            time.time() - self._outage_since)
                self._outage_since = None
            return True

    async def _write(self, items: list[tuple[Key, Cell]]) -> int:
        if not self._schema_ok:  # the decision log's way: the access policy may not be there to migrate
            from app.access.migrate import upgrade

            await upgrade(self.store.engine)
            self._schema_ok = True
        return await self.store.add_request_minutes([cell.row(key) for key, cell in items])

    def _put_back(self, items: list[tuple[Key, Cell]]) -> None:
        """Unwritten cells return ahead of the newer ones, merged with what was counted meanwhile."""
        merged = dict(items)
        for key, cell in self._cells.items():
            if key in merged:
                merged[key].merge(cell)
            else:
                merged[key] = cell
        self._cells = merged
        self._trim()

    def _dead_letter(self, item: tuple[Key, Cell], err: StoreDataError) -> None:
        self.dead_lettered += item[1].requests
        log.error("request counts of %r dead-lettered: %s; dropped", item[0], err.message)

    def _failed(self, err: BaseException) -> None:
        self.failures += 1
        if self._outage_since is None:
            self._outage_since = time.time()
            log.warning("request stats database unreachable (%s); keeping %d cells", type(err).__name__,
                        len(self._cells))
