"""The denial tally: counts per key and reason, bounded, restored when the database refused."""

from __future__ import annotations

from app.audit.denials import MAX_PAIRS, DenialTally


def test_counts_per_key_and_reason_then_a_new_window() -> None:
    tally = DenialTally()
    for _ in range(3):
        tally.count(None, "invalid_api_key", 401)
    tally.count("key_a", "rate_limit_exceeded", 429)
    rows = tally.drain()
    assert {(r["actor"], r["outcome"], r["detail"]["count"]) for r in rows} == {
        ("anonymous", "invalid_api_key", 3), ("key_a", "rate_limit_exceeded", 1)}
    assert all(r["action"] == "access.denied" and r["detail"]["from"] <= r["detail"]["to"] for r in rows)
    assert tally.drain() == []


def test_a_flood_of_keys_is_bounded_and_a_refused_write_is_counted_again() -> None:
    tally = DenialTally()
    for i in range(MAX_PAIRS + 500):
        tally.count(f"key_{i}", "key_blocked", 401)
    rows = tally.drain()
    assert len(rows) == MAX_PAIRS + 1 and sum(r["detail"]["count"] for r in rows) == MAX_PAIRS + 500
    assert [r["detail"]["count"] for r in rows if r["actor"] == "*"] == [500]
    tally.restore(rows)
    assert sum(r["detail"]["count"] for r in tally.drain()) == MAX_PAIRS + 500
