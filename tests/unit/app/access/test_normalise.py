"""Rows are made storable when queued: NUL, surrogates, overlong strings, NaN, overflow, JSON."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from app.access.normalise import INT32_MAX, Normaliser, json_safe, text
from app.access.tables import decisions, spend_logs


@pytest.mark.parametrize(("value", "limit", "want"), [
    ("plain", None, "plain"), ("a\x00b", None, "a\ufffdb"), ("a\ud800b\udfff", None, "a\ufffdb\ufffd"),
    ("héllo ☃", None, "héllo ☃"), ("x" * 10, 4, "xxxx"), (12, None, "12"), ("\x00" * 5, 3, "\ufffd" * 3),
])
def test_text(value: Any, limit: int | None, want: str) -> None:
    assert text(value, limit) == want


def test_json_safe_keeps_what_json_holds_and_nulls_the_rest() -> None:
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    value = {"nan": math.nan, "inf": -math.inf, "big": 2**70, "ok": [1, 2.5, "s\x00", True, None],
             3: "int key", "obj": object(), "set": {1}, "deep": deep}
    out = json_safe(value)
    assert out["nan"] is None and out["inf"] is None and out["big"] is None and out["obj"] is None
    assert out["ok"] == [1, 2.5, "s\ufffd", True, None] and out["3"] == "int key" and out["set"] == [1]
    depth, node = 0, out["deep"]
    while isinstance(node, list):
        depth, node = depth + 1, node[0]
    assert node is None and depth < 32


def test_rows_follow_their_columns() -> None:
    spend = Normaliser(spend_logs).row({
        "event_id": "e" * 40, "request_id": "r", "key_id": "k\x00", "team_id": None, "model": "m" * 300,
        "prompt_tokens": 2**40, "completion_tokens": 1.5, "cost": math.nan, "created_at": datetime.now(UTC),
        "not_a_column": object()})
    assert len(spend["event_id"]) == 32 and spend["key_id"] == "k\ufffd" and spend["team_id"] is None
    assert len(spend["model"]) == 256 and spend["prompt_tokens"] == INT32_MAX and spend["completion_tokens"] == 1
    assert spend["cost"] == 0.0 and "not_a_column" in spend
    row = Normaliser(decisions).row({"lam": math.inf, "feedback": math.nan, "latency_ms": math.inf,
                                     "candidates": {"a": math.nan}, "fallback": 0})
    assert row == {"lam": None, "feedback": None, "latency_ms": 0.0, "candidates": {"a": None}, "fallback": False}


def test_a_typical_decision_row_costs_microseconds() -> None:
    norm = Normaliser(decisions)
    values = {"request_id": "r" * 32, "created_at": datetime.now(UTC), "key_id": "key_abc", "router": "auto",
              "strategy": "learned", "lam": 0.5, "query": "what is the capital of France? " * 100,
              "query_sha256": "0" * 64, "query_chars": 3100, "candidates": {f"m{i}": 0.5 for i in range(9)},
              "chosen": "m1", "routed_to": "m1", "route_latency_ms": 3.0, "latency_ms": 120.0,
              "prompt_tokens": 700, "completion_tokens": 16, "cost": 2e-5, "status": 200, "fallback": False,
              "feedback": None, "feedback_at": None}
    start = time.perf_counter()
    for _ in range(1000):
        norm.row(values)
    assert (time.perf_counter() - start) / 1000 < 200e-6  # ~10-20 µs here; generous for a loaded machine
