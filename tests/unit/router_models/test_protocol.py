from __future__ import annotations

import numpy as np
import pytest

from router_models.evaluation.protocol import evaluate, pick

PRICES = np.array([0.9, 0.2, 0.1])
MODELS = ["big", "mid", "small"]
SCORES = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1], [0, 0, 0]], dtype=np.float32)
TRAIN_MEAN = np.array([0.7, 0.5, 0.3])


def test_perfect_predictions_reach_oracle_cheaply() -> None:
    rep = evaluate(SCORES.copy(), SCORES, PRICES, MODELS, TRAIN_MEAN, lambdas=(0.0, 0.01, 5.0))
    assert rep.oracle == pytest.approx(0.75)
    assert rep.q_best == pytest.approx(0.75) and rep.c_best == pytest.approx(0.9)
    # lambda 0.01 keeps quality at the oracle and takes the cheapest correct model
    assert rep.q_at_c_best == pytest.approx(0.75)
    assert rep.c_at_q_best_pct == pytest.approx(100 * (0.9 + 0.2 + 0.1 + 0.1) / 4 / 0.9)
    assert rep.random_quality == pytest.approx(SCORES.mean())


def test_ties_pick_the_cheaper_model() -> None:
    assert pick(np.zeros((1, 3)), PRICES, 0.0).tolist() == [2]


def test_not_reached_is_none() -> None:
    bad = np.tile([0.0, 0.0, 1.0], (4, 1))
    rep = evaluate(bad, SCORES, PRICES, MODELS, TRAIN_MEAN, lambdas=(0.0, 1.0))
    assert rep.c_at_q_best_pct is None
    assert rep.to_dict()["c_at_q_best_pct"] is None
