"""The console's bucketing and its quality-cost picture, on hand-made rows (no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.access.latency_histogram import COLUMNS, bucket_of
from app.console.curve import curve, read_manifest
from app.console.queries import Window, by_model, requests, routed, router_detail, traffic

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WINDOW = Window(T0 - timedelta(hours=1), 60)


def _decision(minute: int, router: str, model: str, latency: float, status: int = 200, lam: float = 0.2,
              feedback: float | None = None) -> dict[str, object]:
    return {"request_id": f"r{minute}{model}{latency}", "created_at": T0 + timedelta(minutes=minute, seconds=5),
            "router": router, "routed_to": model, "chosen": model, "lam": lam, "latency_ms": latency,
            "status": status, "fallback": status != 200, "feedback": feedback, "candidates": {model: 0.5},
            "explored": False}


def test_traffic_sums_per_bucket_and_per_model() -> None:
    rows = [{"minute": T0, "model": "a", "requests": 2, "tokens": 10, "cost": 0.5},
            {"minute": T0, "model": "b", "requests": 1, "tokens": 5, "cost": 0.25},
            {"minute": T0 + timedelta(minutes=1), "model": "a", "requests": 3, "tokens": 30, "cost": 1.0}]
    out = traffic(rows, WINDOW)
    assert out["traffic"]["requests"] == [3.0, 3.0] and out["traffic"]["cost"] == [0.75, 1.0]
    assert out["totals"] == {"requests": 6.0, "tokens": 45.0, "cost": 1.75}
    assert [m["model"] for m in out["by_model"]] == ["a", "b"]


def _counted(minute: int, model: str, status: int, latencies: list[float]) -> dict[str, object]:
    buckets = dict.fromkeys(COLUMNS, 0)
    for ms in latencies:
        buckets[COLUMNS[bucket_of(ms)]] += 1
    return {"minute": T0 + timedelta(minutes=minute), "model": model, "status": status,
            "requests": len(latencies), **buckets}


def test_request_counts_merge_buckets_into_errors_and_percentiles() -> None:
    rows = [_counted(0, "a", 200, [12.0] * 45), _counted(0, "a", 200, [12.0] * 45),  # two replicas' rows
            _counted(0, "a", 502, [800.0] * 10), _counted(1, "b", 200, [3.0])]
    out = requests(rows, WINDOW)
    assert out["requests"]["requests"] == [100, 1] and out["requests"]["errors"] == [10, 0]
    p50, p95 = out["requests"]["p50"][0], out["requests"]["p95"][0]
    assert 10 < p50 <= 15 and 700 < p95 <= 1000  # to the bucket: 12 ms lies in (10, 15], 800 in (700, 1000]
    assert out["request_totals"]["requests"] == 101 and out["request_totals"]["errors"] == 10
    spend = [{"model": "a", "requests": 90, "tokens": 900, "cost": 0.5}, {"model": "c", "requests": 1,
                                                                          "tokens": 5, "cost": 0.1}]
    merged = {m["model"]: m for m in by_model(spend, out["requests_by_model"])}
    assert merged["a"]["requests"] == 100 and merged["a"]["errors"] == 10 and merged["a"]["tokens"] == 900
    assert merged["b"]["tokens"] == 0 and merged["b"]["p50_ms"] is not None
    assert merged["c"]["requests"] == 0 and merged["c"]["p50_ms"] is None and merged["c"]["cost"] == 0.1


def test_routed_latency_percentiles_errors_and_fallbacks() -> None:
    rows = [_decision(0, "auto", "a", float(ms)) for ms in range(1, 101)] + [_decision(1, "auto", "b", 500, 502)]
    out = routed(rows, WINDOW)
    assert out["routed"]["errors"] == [0, 1] and out["routed"]["p50"][0] == 50.5
    assert out["routed_totals"]["fallbacks"] == 1 and out["by_router"][0]["requests"] == 101


def test_router_detail_shares_lambda_and_recent_newest_first() -> None:
    rows = [_decision(2, "auto", "b", 9, feedback=1.0), _decision(1, "auto", "a", 9, lam=0.5),
            _decision(1, "auto", "b", 9), _decision(0, "other", "a", 9)]
    out = router_detail("auto", rows, WINDOW)
    assert out["share"]["models"] == {"a": [0.5, 0.0], "b": [0.5, 1.0]}
    assert sum(out["lambda"]["counts"]) == 3 and out["requests"] == 3
    assert out["recent"][0]["routed_to"] == "b" and out["feedback_mean"] == 1.0
    single = router_detail("auto", [_decision(0, "auto", "a", 9)], WINDOW)["lambda"]
    assert single == {"centres": [0.2], "counts": [1]}


def test_curve_from_the_shipped_manifest_with_todays_point() -> None:
    manifest = read_manifest("router_models/pretrained/default")
    assert manifest is not None
    prices = manifest["prices"]
    cheap = min(prices, key=prices.get)
    picture = curve(manifest, {cheap: 3, "not-in-manifest": 5}, 0.6)
    assert picture is not None and len(picture["router"]) == 3
    today = picture["today"]
    assert today["cost"] == pytest.approx(prices[cheap]) and (today["quality"], today["requests"]) == (0.6, 3)
    assert "best single model" in picture["baselines"]
    assert curve({"eval": {}}, {}, None) is None and read_manifest("s3://b/p") is None


def test_a_broken_manifest_has_no_curve(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"eval": {"holdout": {"c_best": "x"}}}))
    manifest = read_manifest(str(tmp_path))
    assert manifest is not None and curve(manifest, {}, None) is None
    (tmp_path / "manifest.json").write_text("{not json")
    assert read_manifest(str(tmp_path)) is None
