"""The backfill behind ``routeiq audit export``: a time range of rows, in id order, to S3.

Separate from the command so tests drive it without typer; a rich progress bar (stderr)
counts rows. Uploads run in a thread (boto3 blocks).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.exporter import Sink
from app.audit.ledger import ExportLedger
from app.audit.objects import ExportTarget, encode


async def backfill(engine: AsyncEngine, sink: Sink, target: ExportTarget, since: datetime,
                   until: datetime | None, batch_rows: int, *, progress: bool = True) -> tuple[int, int]:
    """Upload the rows written in [since, until); (rows, objects) written."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    ledger = ExportLedger(engine, timeout_s=60)
    total = await ledger.count_since(since, until)
    rows = objects = 0
    after = 0
    columns = (TextColumn("audit export"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not progress) as bar:
        task = bar.add_task("rows", total=total)
        while batch := await ledger.rows_since(since, until, after, batch_rows):
            first, last = batch[0], batch[-1]
            key = target.key(int(first["id"]), int(last["id"]), first["created_at"])
            await asyncio.to_thread(sink.put, target.bucket, key, encode(batch))
            after = int(last["id"])
            rows, objects = rows + len(batch), objects + 1
            bar.advance(task, len(batch))
    return rows, objects
