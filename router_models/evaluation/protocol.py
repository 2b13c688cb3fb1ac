"""The data README's evaluation protocol, as pure numpy over predicted quality.

A router is judged by its quality-cost curve: for each lambda, every query goes to
``argmax_m(q_hat[m] - lambda * price[m])`` (ties to the cheaper model, as ``decide``
does at serving time); quality is the mean true score of the picks, cost the mean
price. ``Q@C_best`` and ``C@Q_best`` are read off that curve against the best single
model, which is chosen on the *training* split and measured on the evaluated split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_LAMBDAS: tuple[float, ...] = tuple([0.0] + [float(x) for x in np.round(np.geomspace(0.005, 2.0, 57), 5)])
"""Lambda grid: 0 (pure quality) then log-spaced; 2.0 already buys the cheapest model."""


@dataclass(frozen=True)
class CurvePoint:
    lam: float
    quality: float
    cost: float


@dataclass
class EvalReport:
    """Everything ``routeiq eval`` prints; ``to_dict`` is the ``--json`` object."""

    curve: list[CurvePoint]
    best_model: str
    q_best: float
    c_best: float
    oracle: float
    random_quality: float
    random_cost: float
    q_at_c_best: float
    c_at_q_best_pct: float | None
    lambda_at_q_best: float | None
    n_queries: int
    extra: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "q_at_c_best": self.q_at_c_best,
            "q_at_c_best_ratio": self.q_at_c_best / self.q_best if self.q_best else None,
            "c_at_q_best_pct": self.c_at_q_best_pct,
            "lambda_at_q_best": self.lambda_at_q_best,
            "best_model": self.best_model,
            "q_best": self.q_best,
            "c_best": self.c_best,
            "oracle": self.oracle,
            "random": {"quality": self.random_quality, "cost": self.random_cost},
            "n_queries": self.n_queries,
            "curve": [{"lambda": p.lam, "quality": p.quality, "cost": p.cost} for p in self.curve],
            **self.extra,
        }


def pick(pred: np.ndarray, prices: np.ndarray, lam: float) -> np.ndarray:
    """Index of the chosen model per row; ties go to the lower price, then file order."""
    util = pred - lam * prices[None, :]
    best = util.max(axis=1, keepdims=True)
    tied = np.isclose(util, best, rtol=0.0, atol=1e-9)
    # among tied columns choose the cheapest: mask others with +inf price
    masked_price = np.where(tied, prices[None, :], np.inf)
    return masked_price.argmin(axis=1)


def quality_cost_curve(
    pred: np.ndarray, scores: np.ndarray, prices: np.ndarray, lambdas: tuple[float, ...] = DEFAULT_LAMBDAS
) -> list[CurvePoint]:
    rows = np.arange(len(scores))
    curve = []
    for lam in lambdas:
        choice = pick(pred, prices, lam)
        curve.append(CurvePoint(float(lam), float(scores[rows, choice].mean()), float(prices[choice].mean())))
    return curve


def evaluate(
    pred: np.ndarray,
    scores: np.ndarray,
    prices: np.ndarray,
    models: list[str],
    train_mean_scores: np.ndarray,
    lambdas: tuple[float, ...] = DEFAULT_LAMBDAS,
) -> EvalReport:
    """Apply the protocol; ``train_mean_scores`` picks the best single model."""
    if pred.shape != scores.shape:
        raise ValueError(f"predictions {pred.shape} do not match scores {scores.shape}")
    best = int(np.argmax(train_mean_scores))
    q_best, c_best = float(scores[:, best].mean()), float(prices[best])
    curve = quality_cost_curve(pred, scores, prices, lambdas)
    affordable = [p.quality for p in curve if p.cost <= c_best + 1e-12]
    reaching = [p for p in curve if p.quality >= q_best - 1e-12]
    cheapest = min(reaching, key=lambda p: (p.cost, -p.quality)) if reaching else None
    return EvalReport(
        curve=curve,
        best_model=models[best],
        q_best=q_best,
        c_best=c_best,
        oracle=float(scores.max(axis=1).mean()),
        random_quality=float(scores.mean()),
        random_cost=float(prices.mean()),
        q_at_c_best=max(affordable) if affordable else float("nan"),
        c_at_q_best_pct=100.0 * cheapest.cost / c_best if cheapest else None,
        lambda_at_q_best=cheapest.lam if cheapest else None,
        n_queries=len(scores),
    )
