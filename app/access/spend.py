"""The spend buffer: requests record spend here, a background task writes it in batches.

``add`` is synchronous and O(1), so settling a request never waits on the database;
it normalises the event first (``SpendEvent.normalised``: strings cut and cleaned,
counts within their columns, a non-finite cost 0), once. Every ``interval`` the
flusher writes what is pending in batches of one transaction each
(``AccessStore.write_spend``). When the database is unreachable the events stay
buffered (bounded: past ``max_events`` the oldest are dropped, counted and logged)
and are written when it is back; ``close`` flushes what is left. An event the
database refuses anyway (a data error) is isolated by halving its batch, logged with
its request id, counted (``dead_lettered``) and dropped: the rest of the batch, and
every later one, is written. Must not: block the event loop, log keys, or lose an
event that was accepted while there is room.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from app.access.dberrors import StoreDataError
from app.access.flusher import PeriodicFlusher, write_isolating
from app.access.store import AccessStore, SpendEvent

log = logging.getLogger("routeiq.access.spend")
BATCH = 2000


@dataclass
class SpendStats:
    """Counters of the buffer (exposed by ``GET /spend/buffer``)."""

    pending: int = 0
    written: int = 0
    dropped: int = 0
    """Oldest events dropped because the buffer was full (database down too long)."""
    dead_lettered: int = 0
    """Events the database refused (a data error): logged with their request id and dropped."""
    flush_failures: int = 0
    last_error: str | None = None
    last_flush_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class SpendBuffer(PeriodicFlusher):
    _what = "spend events"

    def __init__(self, store: AccessStore, interval_s: float = 1.0, max_events: int = 100_000) -> None:
        super().__init__(interval_s)
        self._store = store
        self._events: deque[SpendEvent] = deque()
        self._max = max_events
        self._stats = SpendStats()
        self._lock = asyncio.Lock()
        self._outage_since: float | None = None
        self._in_flight = 0

    @property
    def stats(self) -> SpendStats:
        self._stats.pending = self.pending
        return self._stats

    def add(self, event: SpendEvent) -> None:
        self._events.append(event.normalised())
        self._trim()

    def _trim(self) -> None:
        while len(self._events) > self._max:
            self._events.popleft()
            self._stats.dropped += 1
            if self._stats.dropped == 1 or self._stats.dropped % 1000 == 0:
                log.error("spend buffer full (%d events): dropped %d oldest so far", self._max, self._stats.dropped)

    @property
    def pending(self) -> int:
        return len(self._events) + self._in_flight

    def start(self) -> None:
        self.start_flusher("routeiq-spend-flusher")

    async def flush(self) -> bool:
        """Write everything pending; ``False`` if the database is unreachable (events kept)."""
        async with self._lock:
            while self._events:
                batch = [self._events.popleft() for _ in range(min(BATCH, len(self._events)))]
                self._in_flight = len(batch)
                try:
                    done = await write_isolating(batch, self._store.write_spend, self._dead_letter)
                except BaseException:  # cancelled mid-write: keep it all (a rewrite skips what landed)
                    self._put_back(batch)
                    raise
                finally:
                    self._in_flight = 0
                self._stats.written += done.written
                if done.error is not None:
                    self._put_back(done.unwritten)
                    self._failed(done.error)
                    return False
                self._stats.last_flush_at = time.time()
            if self._outage_since is not None:
                log.warning("spend database back after %.1f s; buffer flushed", time.time() - self._outage_since)
                self._outage_since = None
            return True

    def _put_back(self, events: list[SpendEvent]) -> None:
        """Unwritten events return to the front, in order (the oldest beyond the bound dropped)."""
        self._events.extendleft(reversed(events))
        self._trim()

    def _dead_letter(self, event: SpendEvent, err: StoreDataError) -> None:
        self._stats.dead_lettered += 1
        self._stats.last_error = err.message[:200]
        log.error("spend event of request %r dead-lettered: %s (key %r, model %r, cost %r); dropped",
                  event.request_id, err.message, event.key_id, event.model[:64], event.cost)

    def _failed(self, err: BaseException) -> None:
        self._stats.flush_failures += 1
        self._stats.last_error = f"{type(err).__name__}: {err}"[:200]
        if self._outage_since is None:
            self._outage_since = time.time()
            log.warning("spend database unreachable (%s); buffering %d events", type(err).__name__,
                        len(self._events))

    async def close(self, timeout_s: float = 10.0) -> None:
        """Stop the flusher and write what is pending (best effort within ``timeout_s``)."""
        await self.stop_and_drain(timeout_s)
