"""``DecisionWriter``: the ``DecisionLog`` of the gateway, batched into ``routeiq_decisions``.

``record`` is synchronous and O(1) on the request path: the record becomes a row
(query truncated or hashed, every value normalised to its column: no NaN, NUL byte,
lone surrogate or overlong string; ``decision_row``) and joins a bounded buffer. A
background task writes the buffer every ``flush_interval_s``, in batches of one
transaction each; while the database is down rows stay buffered (past ``buffer_max``
the oldest are dropped, counted and logged) and are written when it is back;
``close`` flushes what is left. A row the database refuses anyway (a data error, not
an outage) is isolated by halving its batch, logged with its request id, counted
(``dead_lettered``) and dropped, so one bad request never stops the log. Modelled on
the spend buffer (``app.access.spend``).

Feedback may arrive while its row is still buffered, here or in another replica:
``feedback`` flushes this replica's buffer first, then updates the row, and waits up to
one flush interval (plus a margin) for another replica's buffer before answering
"unknown". With the database down it rates a row still buffered here, else fails 503.
Must not: block or raise in ``record``, or log query text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.access.dberrors import StoreDataError, StoreUnavailableError
from app.access.decision_store import DecisionStore, Feedback, decision_row
from app.access.flusher import PeriodicFlusher, write_isolating
from app.config import DecisionLogSettings, GatewayConfig
from app.errors import InvalidRequestError
from app.gateway.decisions import DecisionLog, DecisionRecord, NoDecisionLog

log = logging.getLogger("routeiq.decisions")
BATCH = 1000
FEEDBACK_MARGIN_S = 1.0


class DecisionWriter(PeriodicFlusher):
    _what = "decision records"

    def __init__(self, store: DecisionStore, settings: DecisionLogSettings) -> None:
        super().__init__(settings.flush_interval_s)
        self.store = store
        self._settings = settings
        self._rows: deque[dict[str, Any]] = deque()
        self._lock = asyncio.Lock()
        self._outage_since: float | None = None
        self._schema_ok = False
        self.feedback_wait_s = settings.flush_interval_s + FEEDBACK_MARGIN_S
        """How long feedback waits for a row another replica may still hold in its buffer."""
        self.written = self.dropped = self.dead_lettered = self.failures = 0
        self._in_flight = 0

    @property
    def pending(self) -> int:
        return len(self._rows) + self._in_flight

    def stats(self) -> dict[str, int]:
        """The buffer's counters (``dead_lettered``: rows the database refused, dropped)."""
        return {"pending": self.pending, "written": self.written, "dropped": self.dropped,
                "dead_lettered": self.dead_lettered, "flush_failures": self.failures}

    def record(self, record: DecisionRecord) -> None:
        try:
            row = decision_row(record, self._settings)
        except Exception as err:  # noqa: BLE001  (a bad record must never fail the request)
            log.warning("decision record %s not logged: %s", record.request_id, type(err).__name__)
            return
        self._rows.append(row)
        self._trim()

    def _trim(self) -> None:
        while len(self._rows) > self._settings.buffer_max:
            self._rows.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("decision buffer full (%d): dropped %d oldest so far", self._settings.buffer_max,
                          self.dropped)

    # lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            await self._schema()
        except Exception as err:  # noqa: BLE001  (a database down at start: buffer, retry the schema later)
            log.warning("decision log: schema not checked at start (%s); buffering", type(err).__name__)
        self.start_flusher("routeiq-decision-flusher")

    async def _schema(self) -> None:
        if not self._schema_ok:
            from app.access.migrate import upgrade

            await upgrade(self.store.engine)
            self._schema_ok = True

    async def close(self, timeout_s: float = 10.0) -> None:
        """Stop the flusher and write what is pending (best effort within ``timeout_s``)."""
        await self.stop_and_drain(timeout_s)

    # writing -----------------------------------------------------------------------------
    async def flush(self) -> bool:
        """Write everything pending; ``False`` if the database is unreachable (rows kept)."""
        async with self._lock:
            while self._rows:
                batch = [self._rows.popleft() for _ in range(min(BATCH, len(self._rows)))]
                self._in_flight = len(batch)
                try:
                    done = await write_isolating(batch, self._write, self._dead_letter)
                except BaseException:  # cancelled mid-write: keep it all (a rewrite skips what landed)
                    self._put_back(batch)
                    raise
                finally:
                    self._in_flight = 0
                self.written += done.written
                if done.error is not None:
                    self._put_back(done.unwritten)
                    self._failed(done.error)
                    return False
            if self._outage_since is not None:
                log.warning("decision database back after %.1f s; buffer flushed", time.time() - self._outage_since)
                self._outage_since = None
            return True

    async def _write(self, rows: list[dict[str, Any]]) -> int:
        await self._schema()
        return await self.store.write(rows)

    def _put_back(self, rows: list[dict[str, Any]]) -> None:
        """Unwritten rows return to the front, in order (the oldest beyond the bound dropped)."""
        self._rows.extendleft(reversed(rows))
        self._trim()

    def _dead_letter(self, row: dict[str, Any], err: StoreDataError) -> None:
        """Log (never the query text) and drop a row the database refused."""
        self.dead_lettered += 1
        log.error("decision record %r dead-lettered: %s (router %r, chosen %r); dropped",
                  row["request_id"], err.message, row["router"], row["chosen"])

    def _failed(self, err: BaseException) -> None:
        self.failures += 1
        if self._outage_since is None:
            self._outage_since = time.time()
            log.warning("decision database unreachable (%s); buffering %d records", type(err).__name__,
                        len(self._rows))

    # feedback ----------------------------------------------------------------------------
    async def feedback(self, request_id: str, score: float, key_id: str | None) -> bool:
        """Rate a decision; ``key_id`` None: any request (admin). False: unknown (or not yours)."""
        if not await self.flush():
            return await self._rate_buffered(request_id, score, key_id)
        deadline = time.monotonic() + self.feedback_wait_s
        while True:
            outcome = await self.store.set_feedback(request_id, score, key_id)
            if outcome is Feedback.AMBIGUOUS:
                raise InvalidRequestError("several keys sent this request id: give `key_id`", param="key_id",
                                          code="ambiguous_request_id")
            if outcome is Feedback.SAVED:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.2)  # another replica may not have written it yet

    async def _rate_buffered(self, request_id: str, score: float, key_id: str | None) -> bool:
        async with self._lock:
            for row in self._rows:
                if row["request_id"] == request_id and key_id in (None, row["key_id"]):
                    row["feedback"], row["feedback_at"] = score, datetime.now(UTC)
                    return True
        raise StoreUnavailableError("decision database unavailable; retry the feedback shortly", retry_after=1)


def build_decision_log(cfg: GatewayConfig, engine: AsyncEngine | None) -> DecisionLog:
    """The gateway's decision log, on the replica's engine (``app.wiring`` builds it)."""
    settings = cfg.general_settings.decisions
    if not settings.enabled or engine is None:
        return NoDecisionLog()
    return DecisionWriter(DecisionStore(engine, cfg.general_settings.access.db_timeout_s), settings)
