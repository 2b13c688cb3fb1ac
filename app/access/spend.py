"""The spend buffer: requests record spend here, a background task writes it in batches.

``add`` is synchronous and O(1), so settling a request never waits on the database.
Every ``interval`` the flusher writes what is pending in one transaction
(``AccessStore.write_spend``). When the database is unreachable the events stay
buffered (bounded: past ``max_events`` the oldest are dropped, counted and logged)
and are written when it is back; ``close`` flushes what is left. Must not: block the
event loop, log keys, or lose an event that was accepted while there is room.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from app.access.flusher import PeriodicFlusher
from app.access.store import AccessStore, SpendEvent

log = logging.getLogger("routeiq.access.spend")
BATCH = 2000


@dataclass
class SpendStats:
    """Counters of the buffer (exposed by ``GET /spend/buffer``)."""

    pending: int = 0
    written: int = 0
    dropped: int = 0
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

    @property
    def stats(self) -> SpendStats:
        self._stats.pending = len(self._events)
        return self._stats

    def add(self, event: SpendEvent) -> None:
        if len(self._events) >= self._max:
            self._events.popleft()
            self._stats.dropped += 1
            if self._stats.dropped == 1 or self._stats.dropped % 1000 == 0:
                log.error("spend buffer full (%d events): dropped %d oldest so far", self._max, self._stats.dropped)
        self._events.append(event)

    @property
    def pending(self) -> int:
        return len(self._events)

    def start(self) -> None:
        self.start_flusher("routeiq-spend-flusher")

    async def flush(self) -> bool:
        """Write everything pending; ``False`` if the database refused (events kept)."""
        async with self._lock:
            while self._events:
                batch = [self._events[i] for i in range(min(BATCH, len(self._events)))]
                try:
                    self._stats.written += await self._store.write_spend(batch)
                except Exception as err:  # noqa: BLE001  (any failure: keep the events, retry later)
                    self._failed(err)
                    return False
                for _ in batch:
                    self._events.popleft()
                self._stats.last_flush_at = time.time()
            if self._outage_since is not None:
                log.warning("spend database back after %.1f s; buffer flushed", time.time() - self._outage_since)
                self._outage_since = None
            return True

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
