"""The export's bookkeeping in the database: batches planned, batches uploaded, the cursor.

A batch is the audit rows with ``after_id < id <= last_id``. ``plan`` records the next one
(starting where the last planned one ended) in one transaction *before* anything is
written, and audit rows are never updated, so whoever exports that batch later (this
replica after a restart, or another after a crash) reads exactly the same rows and writes
the same object. Two planners racing get the same ``after_id``: the second insert
conflicts and plans nothing. The cursor (``exported_id``) is the end of the uploaded
prefix of batches; only rows at or below it are ever deleted by retention.

Rows younger than ``settle_s`` are not planned yet: ids are allocated at insert and
committed a moment later, so a slow transaction could commit id 10 after id 11 was
seen. ``settle_s`` must exceed the database timeout (``access.db_timeout_s``), after which
such a transaction has been abandoned.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.access.dberrors import StoreDataError, translated
from app.access.keys import now_utc, utc
from app.access.tables import audit_export, audit_log
from app.audit.objects import ExportTarget


@dataclass(frozen=True)
class Batch:
    after_id: int
    last_id: int
    rows: int
    object_key: str


def _batch(row: Any) -> Batch:
    return Batch(int(row.after_id), int(row.last_id), int(row.rows), str(row.object_key))


def _at(value: datetime) -> datetime:
    at = utc(value)
    assert at is not None  # created_at is NOT NULL
    return at


def _plain(row: Any) -> dict[str, Any]:
    return {str(k): utc(v) if isinstance(v, datetime) else v for k, v in row.items()}


class ExportLedger:
    """All SQL of the audit export."""

    def __init__(self, engine: AsyncEngine, timeout_s: float = 10.0) -> None:
        self.engine = engine
        self._timeout = timeout_s

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        async with translated("audit export database"), asyncio.timeout(self._timeout), \
                self.engine.begin() as conn:
            yield conn

    async def pending(self) -> list[Batch]:
        """Planned batches not uploaded yet, oldest first."""
        stmt = select(audit_export).where(audit_export.c.uploaded_at.is_(None)).order_by(audit_export.c.after_id)
        async with self._tx() as conn:
            return [_batch(r) for r in await conn.execute(stmt)]

    async def plan(self, target: ExportTarget, max_rows: int, settle_s: float) -> Batch | None:
        """Record the next batch (up to ``max_rows`` settled rows); ``None`` when there is
        nothing to export yet or another replica planned it first."""
        cutoff = now_utc() - timedelta(seconds=settle_s)
        try:
            async with self._tx() as conn:
                after = int((await conn.execute(select(func.coalesce(func.max(audit_export.c.last_id), 0))))
                            .scalar_one())
                stmt = (select(audit_log.c.id, audit_log.c.created_at).where(audit_log.c.id > after)
                        .order_by(audit_log.c.id).limit(max_rows))
                found = [(int(r.id), _at(r.created_at)) for r in await conn.execute(stmt)]
                settled = []
                for ident, at in found:  # stop at the first unsettled row: never skip one
                    if at > cutoff:
                        break
                    settled.append((ident, at))
                if not settled:
                    return None
                batch = Batch(after, settled[-1][0], len(settled),
                              target.key(settled[0][0], settled[-1][0], settled[0][1]))
                await conn.execute(insert(audit_export).values(
                    after_id=batch.after_id, last_id=batch.last_id, rows=batch.rows,
                    object_key=batch.object_key, planned_at=now_utc()))
        except StoreDataError:  # the same after_id, planned by another replica meanwhile
            return None
        return batch

    async def rows(self, batch: Batch) -> list[dict[str, Any]]:
        stmt = (select(audit_log).where(audit_log.c.id > batch.after_id, audit_log.c.id <= batch.last_id)
                .order_by(audit_log.c.id))
        async with self._tx() as conn:
            return [_plain(r) for r in (await conn.execute(stmt)).mappings()]

    async def mark_uploaded(self, batch: Batch) -> None:
        stmt = update(audit_export).where(audit_export.c.after_id == batch.after_id).values(uploaded_at=now_utc())
        async with self._tx() as conn:
            await conn.execute(stmt)

    async def exported_id(self, conn: AsyncConnection | None = None) -> int:
        """The cursor: every audit row with an id at or below it is in S3."""
        if conn is None:
            async with self._tx() as c:
                return await self.exported_id(c)
        waiting = (await conn.execute(select(func.min(audit_export.c.after_id))
                                      .where(audit_export.c.uploaded_at.is_(None)))).scalar_one()
        if waiting is not None:
            return int(waiting)
        return int((await conn.execute(select(func.coalesce(func.max(audit_export.c.last_id), 0)))).scalar_one())

    async def oldest_unexported(self) -> datetime | None:
        """When the oldest row not yet in S3 was written (``None``: all exported)."""
        async with self._tx() as conn:
            cursor = await self.exported_id(conn)
            stmt = select(audit_log.c.created_at).where(audit_log.c.id > cursor).order_by(audit_log.c.id).limit(1)
            found = (await conn.execute(stmt)).scalar_one_or_none()
        return utc(found) if found is not None else None

    async def retain(self, days: float) -> int:
        """Delete the database copy of exported rows older than ``days``; how many went.

        The newest batch record stays whatever its age: it says where the next batch starts.
        So does the newest exported row (the cursor's own): SQLite gives a new row the
        highest id in the table plus one, and would reuse deleted ids below the cursor."""
        cutoff = now_utc() - timedelta(days=days)
        async with self._tx() as conn:
            cursor = await self.exported_id(conn)
            gone = (await conn.execute(delete(audit_log).where(audit_log.c.id < cursor,
                                                               audit_log.c.created_at < cutoff))).rowcount
            newest = select(func.max(audit_export.c.last_id)).scalar_subquery()
            await conn.execute(delete(audit_export).where(audit_export.c.uploaded_at.is_not(None),
                                                          audit_export.c.uploaded_at < cutoff,
                                                          audit_export.c.last_id < newest))
        return int(gone or 0)

    async def rows_since(self, since: datetime, until: datetime | None, after_id: int,
                         limit: int) -> list[dict[str, Any]]:
        """Rows written in [since, until), id above ``after_id``, oldest id first (backfills)."""
        conds = [audit_log.c.id > after_id, audit_log.c.created_at >= since]
        if until is not None:
            conds.append(audit_log.c.created_at < until)
        stmt = select(audit_log).where(*conds).order_by(audit_log.c.id).limit(limit)
        async with self._tx() as conn:
            return [_plain(r) for r in (await conn.execute(stmt)).mappings()]

    async def count_since(self, since: datetime, until: datetime | None) -> int:
        conds = [audit_log.c.created_at >= since]
        if until is not None:
            conds.append(audit_log.c.created_at < until)
        async with self._tx() as conn:
            return int((await conn.execute(select(func.count()).select_from(audit_log).where(*conds))).scalar_one())
