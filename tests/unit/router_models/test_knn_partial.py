"""The partial-label KNN on synthetic data with a known answer: a new model with a few dozen
explored labels, the old learner (neighbours' IPS mean, else a global prior) against the
stacked prior, and the gate's verdict between the two."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from router_models.data import RoutingData
from router_models.evaluation.gate import protocol, run_gate
from router_models.inference.scorers import predict_knn
from router_models.training.knn import knn_tensors

MODELS = ["strong", "cheap", "new"]
PRICES = np.array([4.0, 0.2, 0.5])
DIM, CLUSTERS, K = 16, 8, 40


def world(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Queries in clusters of difficulty; ``new`` is good exactly where ``cheap`` is bad.

    So the dense models' estimates for a query say what ``new`` scores there, which the
    stacked prior can learn from a few labels and a neighbour mean cannot."""
    centres = np.random.default_rng(0).normal(size=(CLUSTERS, DIM))
    c = rng.integers(CLUSTERS, size=n)
    x = centres[c] + 0.3 * rng.normal(size=(n, DIM))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    p_cheap = np.linspace(0.05, 0.95, CLUSTERS)[c]
    p = np.stack([np.full(n, 0.9), p_cheap, 0.95 - 0.9 * p_cheap], axis=1)
    return x.astype(np.float32), (rng.random((n, 3)) < p).astype(np.float32)


def partial(n_base: int, n_labels: int, seed: int) -> tuple[np.ndarray, RoutingData]:
    """A full base on the two known models plus ``n_labels`` explored rows for ``new``
    (propensity 0.05, as a 0.1 exploration rate over two models logs them)."""
    rng = np.random.default_rng(seed)
    x, s = world(n_base + n_labels, rng)
    scores = s.copy()
    scores[:n_base, 2] = np.nan
    scores[n_base:, :2] = np.nan
    weights = np.concatenate([np.ones(n_base), np.full(n_labels, 1 / 0.05)])
    return x, RoutingData([f"q{i}" for i in range(len(x))], scores, MODELS, PRICES, weights)


class Router:
    """A KNN artifact's tensors as the gate's ``Predictor`` (queries looked up by text)."""

    def __init__(self, tensors: dict[str, np.ndarray], params: dict[str, Any], table: dict[str, np.ndarray]) -> None:
        self.tensors, self.params, self.table, self.models = tensors, params, table, MODELS

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return predict_knn(np.stack([self.table[t] for t in texts]), self.tensors, self.params)


def old_tensors(x: np.ndarray, data: RoutingData) -> dict[str, np.ndarray]:
    """The first loop's artifact: no ``sparse`` tensor, so neighbours' mean else the prior."""
    t = knn_tensors(x, data, stack=False)
    del t["sparse"]
    return t


def held_out(n: int = 600) -> tuple[RoutingData, np.ndarray]:
    x, s = world(n, np.random.default_rng(99))
    return RoutingData([f"h{i}" for i in range(n)], s, MODELS, PRICES), x


def test_the_stacked_prior_learns_a_sparse_model_the_neighbour_mean_cannot() -> None:
    x, data = partial(2000, 60, seed=1)
    hx = world(400, np.random.default_rng(7))[0]
    truth = 0.95 - 0.9 * np.linspace(0.05, 0.95, CLUSTERS)  # per cluster; read back through cheap's estimate
    new = knn_tensors(x, data)
    assert new["sparse"].tolist() == [0.0, 0.0, 1.0] and "stack_coef" in new
    old_pred = predict_knn(hx, old_tensors(x, data), {"n_neighbors": K})
    new_pred = predict_knn(hx, new, {"n_neighbors": K, "prior_strength": 1e9})
    cheap = new_pred[:, 1]
    expect = 0.95 - 0.9 * cheap  # what `new` scores where cheap's estimate is this
    assert np.abs(new_pred[:, 2] - expect).mean() < 0.08
    assert np.abs(old_pred[:, 2] - expect).mean() > 2 * np.abs(new_pred[:, 2] - expect).mean()
    assert truth.min() < new_pred[:, 2].min() + 0.2 and new_pred[:, 2].max() > truth.max() - 0.2
    assert np.array_equal(old_pred[:, :2], new_pred[:, :2])  # dense models: the plain mean, unchanged


def test_prior_strength_moves_a_sparse_estimate_from_its_neighbours_to_its_prior() -> None:
    x, data = partial(500, 30, seed=2)
    t = knn_tensors(x, data)
    q = x[:50]
    plain = predict_knn(q, {k: v for k, v in t.items() if k != "sparse"}, {"n_neighbors": K})
    unstacked = {k: v for k, v in t.items() if k != "stack_coef"}
    assert np.array_equal(predict_knn(q, unstacked, {"n_neighbors": K, "prior_strength": 0.0}), plain)
    none = predict_knn(q, t, {"n_neighbors": K, "prior_strength": 0.0})
    only = predict_knn(q, t, {"n_neighbors": K, "prior_strength": 1e12})
    some = predict_knn(q, t, {"n_neighbors": K, "prior_strength": 20.0})
    lo, hi = np.minimum(none[:, 2], only[:, 2]), np.maximum(none[:, 2], only[:, 2])
    assert ((some[:, 2] >= lo - 1e-6) & (some[:, 2] <= hi + 1e-6)).all()
    assert not np.allclose(none[:, 2], only[:, 2])


def test_the_new_learner_beats_the_old_on_the_protocol_and_the_gate_ranks_them() -> None:
    x, data = partial(2000, 60, seed=3)
    split, hx = held_out()
    table = {**dict(zip(split.queries, hx, strict=True)), **dict(zip(data.queries, x, strict=True))}
    old = Router(old_tensors(x, data), {"n_neighbors": K}, table)
    new = Router(knn_tensors(x, data), {"n_neighbors": K, "prior_strength": 1e9}, table)
    mean = np.array([0.9, 0.5, 0.5])
    ratio = {name: (r := protocol(router, split, mean)).q_at_c_best / r.q_best
             for name, router in (("old", old), ("new", new))}
    assert ratio["new"] > ratio["old"] + 0.03, ratio
    rng = np.random.default_rng(4)
    log = []
    for i, q in enumerate(split.queries):  # a uniform-random log; at λ 0.1 the price matters
        j = int(rng.integers(3))
        log.append({"query": q, "candidates": dict.fromkeys(MODELS, 0.0), "routed_to": MODELS[j],
                    "chosen": MODELS[j], "status": 200, "feedback": float(split.scores[i, j]),
                    "propensity": 1 / 3, "lambda": 0.1})
    prices = dict(zip(MODELS, PRICES.tolist(), strict=True))
    worse, _ = run_gate(new, old, log, split, mean, prices)
    assert not worse["passed"] and any("Q@C_best" in r for r in worse["refused_because"])
    better, _ = run_gate(old, new, log, split, mean, prices)
    assert better["passed"], better["refused_because"]


@pytest.mark.parametrize("stack", [True, False])
def test_a_model_no_row_scores_is_refused(stack: bool) -> None:
    x, data = partial(50, 0, seed=5)
    with pytest.raises(ValueError, match=r"no row scores \['new'\]"):
        knn_tensors(x, data, stack=stack)


def test_a_projected_bank_learns_a_sparse_model_as_the_full_one_does() -> None:
    from router_models.training.knn import train_knn

    x, data = partial(600, 60, seed=3)
    full = train_knn(data, x, {"n_neighbors": K})
    projected = train_knn(data, x, {"n_neighbors": K, "dims": 8})
    assert "stack_coef" in projected.tensors and projected.tensors["keys"].shape == (len(x), 8)
    q, _ = world(400, np.random.default_rng(9))
    a, b = (predict_knn(q, {k: v.astype(np.float32) for k, v in s.tensors.items()}, s.params)
            for s in (full, projected))
    assert np.all(np.isfinite(b)) and np.abs(a - b).mean() < 0.05  # 8 of 16 dimensions keep the clusters apart
