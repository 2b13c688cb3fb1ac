"""Post-hoc changes to a router's predictions, judged on train only (out-of-fold).

``python -m research.posthoc`` takes the out-of-fold predictions of ``finetuned`` and
``ensemble`` on train.jsonl (``research.split_noise``'s, cached), and scores with the README
protocol: the raw predictions, per-model isotonic and Platt calibration (each fit on the
other folds' rows: cross-fitted), and blends of the two routers. Every variant is also
scored on random 500-query subsets, as in ``research.split_noise``. Writes
``research/RESULTS-posthoc.md``. Test data is never read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import typer
from rich.progress import track
from scipy.optimize import minimize
from sklearn.isotonic import IsotonicRegression

from bench.runs import machine
from research.split_noise import TARGET_PCT, TARGET_RATIO, draw, out_of_fold_cached
from router_models.evaluation.protocol import evaluate

HERE = Path(__file__).parent
Calibrator = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def isotonic(p_fit: np.ndarray, s_fit: np.ndarray, p_apply: np.ndarray) -> np.ndarray:
    """Per-model monotone map from predicted to observed quality."""
    out = np.empty_like(p_apply)
    for m in range(p_fit.shape[1]):
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p_fit[:, m], s_fit[:, m])
        out[:, m] = iso.predict(p_apply[:, m])
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def platt(p_fit: np.ndarray, s_fit: np.ndarray, p_apply: np.ndarray) -> np.ndarray:
    """Per-model sigmoid(a * logit(p) + b), fit by cross-entropy against the (soft) scores."""
    out = np.empty_like(p_apply)
    for m in range(p_fit.shape[1]):
        z, y = _logit(p_fit[:, m]), s_fit[:, m]

        def loss(w: np.ndarray, z: np.ndarray = z, y: np.ndarray = y) -> float:
            q = np.clip(1 / (1 + np.exp(-(w[0] * z + w[1]))), 1e-6, 1 - 1e-6)
            return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))

        a, b = minimize(loss, np.array([1.0, 0.0])).x
        out[:, m] = 1 / (1 + np.exp(-(a * _logit(p_apply[:, m]) + b)))
    return out


def cross_fit(fn: Calibrator, pred: np.ndarray, scores: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Each row calibrated by a map fit on the other folds' rows only."""
    parts = np.array_split(np.random.default_rng(seed).permutation(len(pred)), folds)
    out = np.empty_like(pred)
    for f, held in enumerate(parts):
        fit = np.concatenate([p for g, p in enumerate(parts) if g != f])
        out[held] = fn(pred[fit], scores[fit], pred[held])
    return out


def main(n: int = 500, draws: int = 400, seed: int = 1) -> None:
    tuned, scores, prices, models = out_of_fold_cached("finetuned")
    frozen, frozen_scores, _, _ = out_of_fold_cached("ensemble")
    assert np.array_equal(scores, frozen_scores), "both routers must be predicted on the same rows"
    tuned, frozen = tuned.astype(np.float64), frozen.astype(np.float64)
    variants = {
        "finetuned (default), raw": tuned,
        "finetuned + isotonic (cross-fitted)": cross_fit(isotonic, tuned, scores),
        "finetuned + Platt (cross-fitted)": cross_fit(platt, tuned, scores),
        **{f"{w:.2f} x finetuned + {1 - w:.2f} x ensemble": w * tuned + (1 - w) * frozen for w in (0.85, 0.75, 0.5)},
        "ensemble, raw": frozen,
    }
    rows = []
    for name, pred in track(variants.items(), description="variants"):
        whole = evaluate(pred, scores, prices, models, scores.mean(0))
        ratios, pcts = draw(pred, scores, prices, models, n, draws, seed)
        miss_q, miss_c = 100 * np.mean(ratios < TARGET_RATIO), 100 * np.mean(pcts > TARGET_PCT)
        rows.append(f"| {name} | {whole.q_at_c_best / whole.q_best:.4f} / {whole.c_at_q_best_pct:.1f} | "
                    f"{np.median(ratios):.4f} / {np.median(pcts):.1f} | {miss_q:.0f} % / {miss_c:.0f} % | "
                    f"{np.mean((pred - scores) ** 2):.4f} |")
    lines = [
        f"# Post-hoc calibration and blends, out-of-fold on train ({dt.date.today()}, {machine()})",
        "",
        f"`python -m research.posthoc --n {n} --draws {draws}`. Q@C_best x Q_best / C@Q_best % of C_best; subsets are",
        f"{draws} random {n}-query subsets of the out-of-fold rows (the same subsets for every variant).",
        "",
        "| variant | all 5,008 rows | subsets: median | subsets missing the target | MSE |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
    ]
    (HERE / "RESULTS-posthoc.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    typer.run(main)
