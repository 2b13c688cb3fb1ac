"""How sure a labelled split is that one router beats another: a paired bootstrap of Q@C_best.

The gate's view (b) reads the protocol's Q@C_best ratio off a labelled split of a few
hundred rows. Between two candidates of one learning loop that ratio moved by more than
the gate's 0.01 margin on the same split (bench/RESULTS-learning-loop.md), so "not worse
than the current router by 0.01" let a loop promote one slightly worse router after
another. Resampling the split's rows, the same rows for both routers, and counting how
often the candidate's ratio is higher asks the split the question that matters instead:
is the candidate better here, or only not measurably worse?

Per router, each λ of the protocol's grid picks one model per row whatever the resample, so
the picks' scores and prices are computed once; a resample is then a vector of row counts,
and every resample's curve is one matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from router_models.evaluation.protocol import DEFAULT_LAMBDAS, pick

RESAMPLES = 1000


@dataclass(frozen=True)
class PairedComparison:
    candidate_better_share: float
    """Share of resamples where the candidate's Q@C_best ratio is higher (ties count half)."""
    ratio_difference_ci95: tuple[float, float]
    """2.5 and 97.5 percentiles of candidate - current Q@C_best ratio over the resamples."""
    resamples: int

    def as_dict(self) -> dict[str, object]:
        low, high = self.ratio_difference_ci95
        return {"candidate_better_share": self.candidate_better_share, "ratio_difference_ci95": [low, high],
                "resamples": self.resamples}


def compare(current: np.ndarray, candidate: np.ndarray, scores: np.ndarray, prices: np.ndarray, best: int,
            resamples: int = RESAMPLES, seed: int = 0) -> PairedComparison:
    """Paired bootstrap of both routers' Q@C_best / Q_best on the rows of ``scores``.

    ``current`` and ``candidate`` are predicted quality in ``scores``' column order (``-inf``
    for a model a router does not know); ``best`` is the best single model's column (chosen
    on training data, as the protocol does). A resample where a router never gets within
    C_best counts its ratio as 0. The seed is fixed so a gate's verdict repeats.
    """
    n = len(scores)
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
    q_best = counts @ scores[:, best] / n
    c_best = float(prices[best])
    diff = _ratios(candidate, scores, prices, counts, c_best) - _ratios(current, scores, prices, counts, c_best)
    diff /= np.maximum(q_best, 1e-12)
    share = float(np.mean(diff > 0) + 0.5 * np.mean(diff == 0))
    low, high = np.percentile(diff, [2.5, 97.5])
    return PairedComparison(share, (float(low), float(high)), resamples)


def _ratios(pred: np.ndarray, scores: np.ndarray, prices: np.ndarray, counts: np.ndarray, c_best: float) -> np.ndarray:
    """Q@C_best per resample (not yet divided by Q_best): the best quality among the λ whose
    resampled mean cost stays within C_best."""
    n = len(scores)
    picks = np.stack([pick(pred, prices, lam) for lam in DEFAULT_LAMBDAS])  # (L, n)
    quality = counts @ np.take_along_axis(scores, picks.T, axis=1) / n  # (B, L)
    cost = counts @ prices[picks].T / n
    affordable = np.where(cost <= c_best + 1e-12, quality, -np.inf)
    out = affordable.max(axis=1)
    return np.where(np.isfinite(out), out, 0.0)
