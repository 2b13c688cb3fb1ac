"""The router's offline quality-cost picture, from its manifest, with today's operating point.

The manifest (``router_models`` artifacts) holds the held-out evaluation: the router at its
default λ, at the λ matching the best single model's quality, at the best single model's
cost, plus the best single model and random routing. Today's point puts the traffic the
router actually sent today on the same cost axis (the manifest's prices, weighted by the
share each model got) and, when callers rated answers, their mean feedback as quality.
Must not: read anything but the local artifact directory the config names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_manifest(artifact: str | None) -> dict[str, Any] | None:
    """The manifest of a local artifact directory; ``None`` for ``s3://`` or a missing file."""
    if not artifact or "://" in artifact:
        return None
    path = Path(artifact) / "manifest.json"
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return manifest


def curve(manifest: dict[str, Any], chosen: dict[str, int], feedback_mean: float | None) -> dict[str, Any] | None:
    """Points (cost in the manifest's price unit, quality) for the chart; ``None`` without an evaluation."""
    held = (manifest.get("eval") or {}).get("holdout")
    if not held:
        return None
    try:
        c_best, q_best = float(held["c_best"]), float(held["q_best"])
        router = sorted([(float(held["cost_at_default"]), float(held["quality_at_default"])),
                         (c_best * float(held["c_at_q_best_pct"]) / 100, q_best),
                         (c_best, float(held["q_at_c_best"]))])
        rand = held.get("random") or {}
        baselines = {"best single model": (c_best, q_best),
                     "random": (float(rand["cost"]), float(rand["quality"])) if rand else None}
    except (KeyError, TypeError, ValueError):
        return None
    prices: dict[str, float] = manifest.get("prices") or {}
    priced = {m: n for m, n in chosen.items() if m in prices}
    today = None
    if priced:
        total = sum(priced.values())
        today = {"cost": sum(prices[m] * n for m, n in priced.items()) / total, "quality": feedback_mean,
                 "requests": total}
    return {"price_unit": manifest.get("price_unit"), "router": router,
            "baselines": {k: v for k, v in baselines.items() if v is not None}, "oracle": held.get("oracle"),
            "default_lambda": manifest.get("default_lambda"), "today": today}
