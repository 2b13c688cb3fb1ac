"""The background flush loop shared by the spend buffer and the decision log.

Both keep a bounded in-memory buffer that a task writes every ``interval`` seconds,
backing off (up to 10x) while the database refuses, and drain it at shutdown. A
subclass implements ``flush() -> bool`` (``False``: the database refused, keep the
rows) and ``pending``.
"""

from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger("routeiq.access")


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
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:
            if not await self.flush():
                await asyncio.sleep(0.5)
        if self.pending:
            log.error("shutting down with %d unwritten %s", self.pending, self._what)
