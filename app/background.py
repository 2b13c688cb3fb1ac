"""Stopping a replica's background tasks: flushers, the audit exporter and its denial
tally, the config watcher, credential rotation, the store's probe, the limiter's recovery.

Each of them is cancelled at shutdown and awaited, so nothing runs on past its owner's
``close``. Waiting with ``gather(..., return_exceptions=True)`` and not with
``suppress(CancelledError)``: the task's own end (cancelled, or a failure its loop already
logged) is not raised again here, but a cancellation of the caller while it waits still
reaches the caller, where ``suppress`` would swallow it and let a cancelled shutdown go on.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def stop(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel ``tasks`` (``None``: not started) and wait until every one has ended."""
    started = [task for task in tasks if task is not None]
    for task in started:
        task.cancel()
    await asyncio.gather(*started, return_exceptions=True)
