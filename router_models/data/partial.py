"""Feedback rows from the decision log, merged with a full-label base set.

``routeiq decisions export --training`` writes one row per rated request:
``{"query", "scores": {served model: feedback}, "propensity"}``, one model's score where
the shipped data scores all nine. ``load_feedback`` reads such rows (any number of models
per row, at least one), and ``merge`` joins them to a full-label split: the models become
the union (a model only the feedback knows gets a column that is NaN wherever it did not
answer), and each row gets a training weight.

The weight of a feedback row is its inverse propensity, ``1 / max(p, MIN_PROPENSITY)``:
the router chose the served model *because of* the query, so the queries a model answered
are not a sample of all queries; weighting each by ``1/p`` makes them one again
(importance weighting for the policy's covariate shift), and the clip bounds the
variance a tiny ``p`` would add. Rows without a propensity (written before exploration, or
answered by a provider fallback) weigh 1. Base rows weigh 1.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from router_models.data.loader import RoutingData, load_prices

MIN_PROPENSITY = 0.05
"""Inverse-propensity weights are clipped at 1 / this (20)."""


def _row(path: str | Path, n: int, rec: Any) -> tuple[str, dict[str, float], float]:
    """One record's query, scores and weight; a malformed one fails naming file and record."""
    where = f"{path}: record {n}"
    if not isinstance(rec, dict):
        raise ValueError(f"{where}: not a JSON object")
    query, scores, p = rec.get("query"), rec.get("scores"), rec.get("propensity")
    if not isinstance(query, str) or not query:
        raise ValueError(f"{where}: `query` must be a non-empty string")
    if not isinstance(scores, dict) or not scores:
        raise ValueError(f"{where}: `scores` must be an object with at least one model's score")
    for model, score in scores.items():
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0.0 <= float(score) <= 1.0:
            raise ValueError(f"{where}: score of {model!r} must be a number in [0, 1], got {score!r}")
    if p is not None and (isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 < float(p) <= 1.0
                          or not math.isfinite(float(p))):
        raise ValueError(f"{where}: `propensity` must be a number in (0, 1] or null, got {p!r}")
    weight = 1.0 / max(float(p), MIN_PROPENSITY) if p is not None else 1.0
    return query, {m: float(s) for m, s in scores.items()}, weight


def load_feedback(path: str | Path, candidates_path: str | Path) -> RoutingData:
    """Partial-label rows (JSONL); every model they score must have a price."""
    queries, rows, weights, models = [], [], [], {}
    with open(path, encoding="utf-8") as fh:
        n = 0
        for line in fh:
            if not line.strip():
                continue
            n += 1
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: record {n}: not JSON ({err.msg})") from None
            query, scores, weight = _row(path, n, rec)
            queries.append(query)
            rows.append(scores)
            weights.append(weight)
            models.update(dict.fromkeys(scores))
    if not rows:
        raise ValueError(f"{path}: no records")
    names = list(models)
    prices = load_prices(candidates_path)
    if unpriced := [m for m in names if m not in prices]:
        raise ValueError(f"{candidates_path}: no price for {unpriced} (scored in {path})")
    scores = np.array([[r.get(m, np.nan) for m in names] for r in rows], dtype=np.float32)
    return RoutingData(queries, scores, names, np.array([prices[m] for m in names]), np.array(weights))


def merge(base: RoutingData, extra: RoutingData) -> RoutingData:
    """``base``'s rows then ``extra``'s, over the union of their models (base's order first)."""
    models = [*base.models, *(m for m in extra.models if m not in base.models)]
    price = {**dict(zip(extra.models, extra.prices, strict=True)), **dict(zip(base.models, base.prices, strict=True))}

    def widen(d: RoutingData) -> np.ndarray:
        out = np.full((len(d), len(models)), np.nan, dtype=np.float32)
        for j, m in enumerate(d.models):
            out[:, models.index(m)] = d.scores[:, j]
        return out

    weights = np.concatenate([d.weights if d.weights is not None else np.ones(len(d)) for d in (base, extra)])
    return RoutingData([*base.queries, *extra.queries], np.vstack([widen(base), widen(extra)]), models,
                       np.array([price[m] for m in models]), weights)
