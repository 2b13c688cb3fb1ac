"""The circuit breaker on its own: open on failure, one probe at a time, back off, close."""

from __future__ import annotations

import time

from app.breaker import Breaker


def test_opens_on_failure_and_lets_one_probe_through_after_the_open_period() -> None:
    b = Breaker("redis", open_s=0.05, max_open_s=0.2)
    assert b.up and b.allow() and b.report() == {"status": "up"}
    b.failure(ConnectionError("redis://:secret@host"))
    report = b.report()
    assert report["status"] == "down" and report["error"] == "ConnectionError" and "since" in report
    assert "secret" not in repr(report)
    assert not b.allow()  # open: fail fast
    time.sleep(0.06)
    assert b.allow()  # half-open: this caller probes...
    assert not b.allow()  # ...and no one else meanwhile
    b.success()
    assert b.up and b.allow() and b.report() == {"status": "up"}


def test_failed_probes_back_off_up_to_the_maximum() -> None:
    b = Breaker("database", open_s=0.02, max_open_s=0.08)
    b.failure(OSError())
    for expected in (0.04, 0.08, 0.08):
        time.sleep(0.03 if expected == 0.04 else expected + 0.01)
        assert b.allow()
        b.failure(OSError())
        start = time.monotonic()
        while not b.allow():
            time.sleep(0.005)
        assert time.monotonic() - start >= expected * 0.8
        b.release()  # a probe that ended without an answer: the next caller may probe


def test_a_cancelled_probe_does_not_block_the_next() -> None:
    b = Breaker("redis", open_s=0.0)
    b.failure(TimeoutError())
    assert b.allow()
    assert not b.allow()
    b.release()
    assert b.allow()
