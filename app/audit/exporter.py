"""The audit exporter: database → spool → S3, one round every ``interval_s``.

A round, on the replica holding the lease (``app.audit.lease``):

1. **recover**: batches the ledger has planned but not uploaded, missing from this
   replica's spool (planned by a replica that died, or a lost spool), are rebuilt from
   the database; spooled batches the ledger no longer waits for are removed;
2. **plan**: new batches are planned in the ledger and written to the spool, while the
   spool is under ``spool_max_bytes`` (over it, rows just wait in the database);
3. **upload**, oldest first: put the object, then mark the batch uploaded (the cursor
   moves), then delete its spool file. A failed upload stops the round: the rest waits;
4. **retention** (``retention_days``): delete exported rows older than that.

Every step can be cut short by a crash: the ledger's plan fixes each batch's rows and
object name first, so redoing any step writes the same object (overwriting an identical
one) and the cursor never passes a batch S3 does not have. At-least-once, no gap, no
duplicate.

Failing rounds make ``report()`` say ``degraded`` (readiness detail; readiness itself
stays up: the audit log keeps growing in the database) with the error's type.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol

from app.audit.lease import Lease, LocalLease
from app.audit.ledger import Batch, ExportLedger
from app.audit.objects import ExportTarget, encode
from app.audit.spool import Spool
from app.background import stop
from app.config import AuditSettings
from app.gateway.metrics import Metrics, NoMetrics

log = logging.getLogger("routeiq.audit")
MAX_PLANNED_PER_ROUND = 50
RETENTION_EVERY_S = 300.0


class Sink(Protocol):
    def put(self, bucket: str, key: str, data: bytes) -> None: ...


@dataclass
class Round:
    """What one round did (tests and logs)."""

    leader: bool = False
    planned: int = 0
    rebuilt: int = 0
    uploaded: int = 0
    deleted: int = 0
    error: str | None = None


class AuditExporter:
    def __init__(self, ledger: ExportLedger, spool: Spool, sink: Sink, target: ExportTarget,
                 settings: AuditSettings, *, lease: Lease | None = None, metrics: Metrics | None = None) -> None:
        self.ledger, self.spool, self.sink, self.target = ledger, spool, sink, target
        self.settings = settings
        self.lease = lease or LocalLease()
        self.metrics = metrics or NoMetrics()
        self._task: asyncio.Task[None] | None = None
        self._retained_at = float("-inf")
        self.leader = False
        self.last_error: str | None = None
        self.failing_since: float | None = None
        self.lag_s = 0.0

    # one round --------------------------------------------------------------------------------
    async def run_once(self) -> Round:
        out = Round()
        self.leader = out.leader = await self.lease.hold()
        if not out.leader:  # the leader reports the lag; take max() over replicas
            self.lag_s = 0.0
            batches, size = self.spool.size()
            self.metrics.audit_export(lag_s=0.0, spool_batches=batches, spool_bytes=size)
            return out
        try:
            out.rebuilt = await self._recover()
            out.planned = await self._plan()
            out.uploaded = await self._upload()
            out.deleted = await self._retain()
        except Exception as err:  # noqa: BLE001  (database or S3 down: retry next round)
            out.error = f"{type(err).__name__}: {err}"[:300]
        self._note(out)
        await self._measure()
        return out

    async def _recover(self) -> int:
        pending = await self.ledger.pending()
        waiting = {b.after_id for b in pending}
        for spooled in self.spool.batches():
            if spooled.batch.after_id not in waiting:  # uploaded and recorded: the file is left over
                self.spool.remove(spooled.batch)
        rebuilt = 0
        for batch in pending:
            if not self.spool.has(batch):
                await self._spool(batch)
                rebuilt += 1
        return rebuilt

    async def _spool(self, batch: Batch) -> None:
        rows = await self.ledger.rows(batch)
        await asyncio.to_thread(self.spool.put, batch, encode(rows))

    async def _plan(self) -> int:
        planned = 0
        while planned < MAX_PLANNED_PER_ROUND and self.spool.size()[1] < self.settings.spool_max_bytes:
            batch = await self.ledger.plan(self.target, self.settings.batch_rows, self.settings.settle_s)
            if batch is None:
                break
            await self._spool(batch)
            planned += 1
        return planned

    async def _upload(self) -> int:
        uploaded = 0
        for spooled in self.spool.batches():
            batch = spooled.batch
            data = await asyncio.to_thread(self.spool.read, batch)
            await asyncio.to_thread(self.sink.put, self.target.bucket, batch.object_key, data)
            await self.ledger.mark_uploaded(batch)  # the cursor moves only now
            self.spool.remove(batch)
            uploaded += 1
        return uploaded

    async def _retain(self) -> int:
        days = self.settings.retention_days
        if days is None or time.monotonic() - self._retained_at < RETENTION_EVERY_S:
            return 0
        deleted = await self.ledger.retain(days)
        self._retained_at = time.monotonic()
        if deleted:
            log.info("audit retention: deleted %d exported rows older than %g days", deleted, days)
        return deleted

    def _note(self, out: Round) -> None:
        if out.error is None:
            if self.failing_since is not None:
                log.info("audit export recovered")
            self.last_error, self.failing_since = None, None
            return
        if self.failing_since is None:
            self.failing_since = time.time()
            log.warning("audit export failing (rows wait in the spool and the database): %s", out.error)
        self.last_error = out.error

    async def _measure(self) -> None:
        with suppress(Exception):
            oldest = await self.ledger.oldest_unexported()
            self.lag_s = 0.0 if oldest is None else max(0.0, time.time() - oldest.timestamp())
        batches, size = self.spool.size()
        self.metrics.audit_export(lag_s=self.lag_s, spool_batches=batches, spool_bytes=size)

    # readiness ------------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """Readiness detail: ``degraded`` while rounds fail (readiness itself stays up)."""
        batches, size = self.spool.size()
        out: dict[str, Any] = {"status": "degraded" if self.last_error else "ok", "leader": self.leader,
                               "lag_s": round(self.lag_s, 1), "spool_batches": batches, "spool_bytes": size}
        if self.last_error:
            out["error"] = self.last_error.split(":", 1)[0]  # the type only: readiness is unauthenticated
            out["failing_since"] = self.failing_since
        return out

    # lifecycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-export")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.interval_s)
            try:
                await self.run_once()
            except Exception:  # a bug must not end the loop
                log.exception("audit export round failed")

    async def close(self) -> None:
        await stop(self._task)
        self._task = None
