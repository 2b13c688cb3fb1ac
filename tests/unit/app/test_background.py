"""``app.background.stop``: every task ends before it returns, and a cancelled caller stays cancelled."""

from __future__ import annotations

import asyncio

import pytest

from app.background import stop


async def _slow_to_stop(release: asyncio.Event) -> None:
    """A loop that needs a moment to wind down once cancelled (a last flush, a socket to close)."""
    try:
        await asyncio.sleep(3600)
    finally:
        await release.wait()


async def test_every_task_has_ended_when_stop_returns_and_its_failure_is_not_raised() -> None:
    async def fails() -> None:
        raise RuntimeError("a loop's failure, already logged where it happened")

    failed, running = asyncio.create_task(fails()), asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)
    await stop(failed, None, running)
    assert failed.done() and running.cancelled()


async def test_a_shutdown_cancelled_while_it_waits_is_cancelled_not_swallowed() -> None:
    release = asyncio.Event()
    task = asyncio.create_task(_slow_to_stop(release))
    await asyncio.sleep(0)
    closer = asyncio.create_task(stop(task))
    await asyncio.sleep(0)
    closer.cancel()  # e.g. a shutdown that ran out of time
    await asyncio.sleep(0)
    release.set()  # the task winds down; only then may the closer end
    with pytest.raises(asyncio.CancelledError):
        await closer
    assert task.done()

