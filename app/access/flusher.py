"""The background flush loop shared by the spend buffer and the decision log.

Both keep a bounded in-memory buffer that a task writes every ``interval`` seconds,
backing off (up to 10x) while the database refuses, and drain it at shutdown. A
subclass implements ``flush() -> bool`` (``False``: the database is unreachable, keep
the rows) and ``pending``; it writes each batch with ``write_isolating``, so a row the
database refuses (a data error, not an outage) costs only that row.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from app.access.dberrors import StoreDataError
from app.background import stop

log = logging.getLogger("routeiq.access")
R = TypeVar("R")


@dataclass
class BatchOutcome(Generic[R]):
    """What ``write_isolating`` did with a batch."""

    written: int = 0
    """Rows the database took (rows it already had are not counted)."""
    dead_lettered: int = 0
    unwritten: list[R] = field(default_factory=list)
    """The batch's tail, in order, left unwritten by an outage (``error``): keep it."""
    error: BaseException | None = None


async def write_isolating(rows: list[R], write: Callable[[list[R]], Awaitable[int]],
                          dead_letter: Callable[[R, StoreDataError], None]) -> BatchOutcome[R]:
    """Write ``rows`` in order; a write refused on data is split in halves until each bad
    row is alone, and that row goes to ``dead_letter`` (every other row lands).

    Each write is one transaction, so a refused one wrote nothing and its halves can be
    retried. Halves are written left first, so what is done is always a prefix of
    ``rows``: an outage (any other error) stops here and hands back the rest. One bad row
    in a batch of n costs about 2·log2(n) extra transactions.
    """
    out: BatchOutcome[R] = BatchOutcome()
    todo = [(0, len(rows))]
    while todo:
        lo, hi = todo.pop()
        try:
            out.written += await write(rows[lo:hi])
        except StoreDataError as err:
            if hi - lo == 1:
                dead_letter(rows[lo], err)
                out.dead_lettered += 1
            else:
                mid = (lo + hi) // 2
                todo += [(mid, hi), (lo, mid)]
        except Exception as err:  # noqa: BLE001  (an outage: the caller keeps the rest)
            out.error, out.unwritten = err, rows[lo:]
            break
    return out


class PeriodicFlusher:
    """Runs ``flush`` periodically in a task; ``stop_and_drain`` at shutdown."""

    _what = "records"

    def __init__(self, interval_s: float) -> None:
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        raise NotImplementedError

    async def flush(self) -> bool:
        raise NotImplementedError

    def start_flusher(self, name: str) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=name)

    async def _run(self) -> None:
        delay = self._interval
        while True:
            await asyncio.sleep(delay)
            ok = await self.flush()
            delay = self._interval if ok else min(delay * 2, 10 * self._interval)

    async def stop_and_drain(self, timeout_s: float) -> None:
        """Stop the task and write what is pending (best effort within ``timeout_s``)."""
        await stop(self._task)
        self._task = None
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:
            if not await self.flush():
                await asyncio.sleep(0.5)
        if self.pending:
            log.error("shutting down with %d unwritten %s", self.pending, self._what)
