"""The audit exporter against real Postgres/SQLite and moto's S3: rounds, outages, crashes.

A crash is a ``BaseException`` raised from inside a collaborator at the chosen moment
(after an upload, before one, before the spool write): it escapes the round like the
process dying there, and a new exporter (the same spool: a restart; a fresh spool:
another replica taking over) must finish the job with no gap and no duplicate object.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from app.access.keys import now_utc
from app.access.store import AccessStore
from app.access.tables import audit_log
from app.audit.exporter import AuditExporter
from app.audit.ledger import Batch, ExportLedger
from app.audit.objects import parse_export_url
from app.audit.sink import S3Sink
from app.audit.spool import Spool
from app.config import AuditSettings
from devtools.s3_server import S3Server
from tests.unit.app.audit.conftest import all_ids, exported, settings, write_rows


class Crash(BaseException):
    """The process dying at this point (not an error any code handles)."""


def exporter(store: AccessStore, cfg: AuditSettings, *, sink: Any = None, spool: Spool | None = None) -> AuditExporter:
    assert cfg.export_url is not None
    return AuditExporter(ExportLedger(store.engine), spool or Spool(cfg.spool_dir), sink or S3Sink(cfg),
                         parse_export_url(cfg.export_url), cfg)


async def test_rows_become_date_partitioned_objects_and_the_cursor_follows(
        store: AccessStore, s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.new_bucket()
    cfg = settings(s3_server, bucket, tmp_path / "spool")
    ex = exporter(store, cfg)
    await write_rows(store, 7)
    done = await ex.run_once()
    assert (done.error, done.planned, done.uploaded) == (None, 3, 3)
    objects = exported(s3_server, bucket)
    day = now_utc().strftime("%Y-%m-%d")
    assert sorted(objects) == [f"audit/dt={day}/{a:020d}-{b:020d}.jsonl.gz" for a, b in ((1, 3), (4, 6), (7, 7))]
    assert all_ids(objects) == list(range(1, 8))
    assert await ex.ledger.exported_id() == 7 and await ex.ledger.oldest_unexported() is None
    assert (await ex.run_once()).planned == 0  # nothing new: nothing planned, nothing rewritten
    await write_rows(store, 2)
    await ex.run_once()
    assert all_ids(exported(s3_server, bucket)) == list(range(1, 10))
    assert ex.report()["status"] == "ok" and ex.report()["spool_batches"] == 0


async def test_s3_down_grows_the_spool_and_it_drains_when_s3_is_back(
        store: AccessStore, own_s3: S3Server, tmp_path: Path) -> None:
    bucket = own_s3.new_bucket()
    cfg = settings(own_s3, bucket, tmp_path / "spool")
    ex = exporter(store, cfg)
    await write_rows(store, 5)
    own_s3.stop()
    first = await ex.run_once()
    assert first.error is not None and first.uploaded == 0
    assert ex.report()["status"] == "degraded" and ex.report()["spool_batches"] == 2
    assert await ex.ledger.exported_id() == 0  # the cursor waits for S3
    await write_rows(store, 4)
    await ex.run_once()
    assert ex.report()["spool_batches"] == 4 and ex.lag_s > 0  # the spool grows; nothing is lost
    own_s3.start()
    back = await ex.run_once()
    assert back.error is None and back.uploaded == 4
    assert all_ids(exported(own_s3, bucket)) == list(range(1, 10))
    assert ex.report() | {"lag_s": 0} == {"status": "ok", "leader": True, "lag_s": 0, "spool_batches": 0,
                                          "spool_bytes": 0}


class CrashingSink:
    """A real S3 sink that dies around its ``n``-th upload (``after``: once S3 has the object)."""

    def __init__(self, cfg: AuditSettings, n: int, after: bool) -> None:
        self.sink, self.n, self.after = S3Sink(cfg), n, after

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.n -= 1
        if self.n == 0 and not self.after:
            raise Crash
        self.sink.put(bucket, key, data)
        if self.n == 0:
            raise Crash


class CrashingSpool(Spool):
    """Dies when asked to spool its ``n``-th batch (planned in the ledger, not on disk yet)."""

    def __init__(self, directory: Path, n: int) -> None:
        super().__init__(directory)
        self.n = n

    def put(self, batch: Batch, data: bytes) -> Path:
        self.n -= 1
        if self.n == 0:
            raise Crash
        return super().put(batch, data)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # the ledger's SQL is covered on both above
@pytest.mark.parametrize("moment", ["after-upload", "before-upload", "before-spool"])
@pytest.mark.parametrize("successor", ["restart", "other-replica"])
async def test_a_crash_mid_export_leaves_no_gap_and_no_duplicate(
        store: AccessStore, s3_server: S3Server, tmp_path: Path, moment: str, successor: str) -> None:
    bucket = s3_server.new_bucket()
    cfg = settings(s3_server, bucket, tmp_path / "spool")
    await write_rows(store, 8)
    if moment == "before-spool":
        doomed = exporter(store, cfg, spool=CrashingSpool(tmp_path / "spool", 2))
    else:
        doomed = exporter(store, cfg, sink=CrashingSink(cfg, 2, after=moment == "after-upload"))
    with pytest.raises(Crash):
        await doomed.run_once()
    before = exported(s3_server, bucket)
    assert await doomed.ledger.exported_id() <= 3  # the crashed batch was never marked uploaded
    spool = tmp_path / ("spool" if successor == "restart" else "spool-other")
    heir = exporter(store, settings(s3_server, bucket, spool))
    await write_rows(store, 2)
    done = await heir.run_once()
    assert done.error is None
    objects = exported(s3_server, bucket)
    ids = all_ids(objects)
    assert ids == list(range(1, 11)) and len(set(ids)) == len(ids)  # no gap, no row twice
    assert all(objects[k] == v for k, v in before.items())  # what was there is unchanged, not duplicated
    assert await heir.ledger.exported_id() == 10 and heir.report()["spool_batches"] == 0


async def test_two_exporters_at_once_write_each_row_once(
        store: AccessStore, s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.new_bucket()
    a = exporter(store, settings(s3_server, bucket, tmp_path / "a"))
    b = exporter(store, settings(s3_server, bucket, tmp_path / "b"))
    await write_rows(store, 10)
    for _ in range(3):
        await a.run_once()
        await b.run_once()
    assert all_ids(exported(s3_server, bucket)) == list(range(1, 11))


async def _age(store: AccessStore, ids: range, days: float) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(update(audit_log).where(audit_log.c.id.in_(list(ids)))
                           .values(created_at=now_utc() - timedelta(days=days)))


async def test_retention_deletes_only_exported_rows_older_than_the_setting(
        store: AccessStore, own_s3: S3Server, tmp_path: Path) -> None:
    bucket = own_s3.new_bucket()
    ex = exporter(store, settings(own_s3, bucket, tmp_path / "spool", retention_days=2))
    await write_rows(store, 6)
    await _age(store, range(1, 4), 5)  # old and (after the round) exported
    await ex.run_once()
    own_s3.stop()
    await write_rows(store, 3)
    await _age(store, range(7, 10), 5)  # old but not exported: S3 is down
    ex._retained_at = float("-inf")
    await ex.run_once()
    async with store.engine.connect() as conn:
        left = [r[0] for r in await conn.execute(select(audit_log.c.id).order_by(audit_log.c.id))]
    assert left == [4, 5, 6, 7, 8, 9]  # 1-3 deleted; 4-6 exported but young; 7-9 old but only in the spool
    # (after S3 is back: 7 and 8 go; 9, the newest exported row, stays until a newer one is exported)
    own_s3.start()
    ex._retained_at = float("-inf")
    done = await ex.run_once()
    assert done.deleted == 2 and all_ids(exported(own_s3, bucket)) == list(range(1, 10))
    await write_rows(store, 1)
    await ex.run_once()  # the ledger still knows where the next batch starts
    assert all_ids(exported(own_s3, bucket)) == list(range(1, 11))
