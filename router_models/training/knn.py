"""KNN router: llmrouter's ``KNNRouter`` config, as k-nearest-neighbour *regression*.

The library fits ``KNeighborsClassifier(**hparam)`` on argmax labels. We build the same
router and hand its ``hparam`` (``n_neighbors``, ``metric``, ``weights``) to
``KNeighborsRegressor`` on the per-model score matrix: the prediction for model m is the
(weighted) mean score of m on the k nearest training queries. The artifact stores the
training embeddings (float16) and scores; serving recomputes neighbours in numpy
(``inference.scorers``), so no sklearn object is ever pickled.

On partial labels (decision-log feedback) a neighbour only counts for the models it has a
score for, weighted by its row weight (inverse propensity, ``data.partial``). That is
enough for the models the base set scores on every row, not for a *sparse* model: one
scored on under ``DENSE_SHARE`` of the rows the best-covered model is (a model the user
added, known only from explored answers). Exploring 3 new models at rate 0.1 gives each
~170 labels in 5,000 requests, so
fewer than one of a query's 80 neighbours scores it and its plain neighbour mean is one or
two 0/1 scores: the first loop's router picked new models on noise and the gate refused
every candidate (bench/RESULTS-learning-loop.md). Two fixes, measured offline by
``research/partial_labels.py`` on the training split:

- **Shared strength (``stack``).** A sparse model's score is predicted from what exists
  for every query: the dense models' KNN estimates there (how hard the query is, and for
  which kind of model). A weighted ridge fit on the rows that score it, each weighing its
  inverse propensity (so it estimates the model over all queries, not over those the
  policy sent it), learns that map from a few hundred labels; the ``stack_coef`` tensor
  holds it and serving applies it per query.
- **Shrinkage (``prior_strength``).** The sparse model's estimate is
  ``(sum w*s + a*prior(q)) / (sum w + a)`` over the neighbours that scored it: ``a``
  pseudo-weight of that per-query prior (the global weighted mean without ``stack``). An
  explored label weighs its inverse propensity (up to 20), so a = 200 lets ten nearby
  explored labels count as much as the prior.

Dense models keep the plain mean. Artifacts without the ``sparse`` tensor (trained before)
serve as they did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from router_models.data import RoutingData
from router_models.inference.scorers import project
from router_models.training.scorer import TrainedScorer

PRIOR_STRENGTH = 200.0
"""Pseudo-weight of a sparse model's prior against its neighbours' (inverse-propensity) weights."""
DENSE_SHARE = 0.5
"""A model scored on fewer than this share of the rows the best-covered model is scored on is
*sparse* (relative, so a base model the policy rarely serves stays dense however long the log)."""
RIDGE = 1.0
"""Ridge penalty of the stacked prior (features are scores in [0, 1])."""
DEFAULT_HPARAM: dict[str, Any] = {"n_neighbors": 80, "metric": "cosine", "weights": "uniform",
                                  "prior_strength": PRIOR_STRENGTH, "stack": True, "dims": None}
STATIC_DIMS = 64
"""``dims`` for a KNN on the static embedder (``training.pipeline.fit``): its keys projected onto
their top 64 principal components (fitted on the training rows), centred and unit length.
Cross-validated with the projection fitted per fold (``research/knn_projection.py``), the KNN
alone routed better that way (1.047 x / 36.4 % against 1.040 x / 46.7 %), and the bank is
1.3 MB instead of 7.7: with cold caches that product was most of a static decision's CPU
(bench/RESULTS-auto.md). ``None`` (the default, and MiniLM routers): no projection."""


def train_knn(
    data: RoutingData,
    embeddings: np.ndarray,
    hparam: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainedScorer:
    from sklearn.neighbors import KNeighborsRegressor

    from router_models.training.llmrouter_compat import build_router

    hp = {**DEFAULT_HPARAM, **(hparam or {})}
    if hp["metric"] != "cosine" or hp["weights"] not in ("uniform", "distance"):
        raise ValueError("serving implements metric=cosine with weights uniform|distance only")
    sk = {k: hp[k] for k in ("n_neighbors", "metric", "weights")}
    router = build_router("KNNRouter", data, embeddings, sk)
    keys, projection = project_keys(np.asarray(embeddings, np.float32), hp["dims"])
    reg = KNeighborsRegressor(**router.cfg["hparam"])
    reg.fit(keys, np.nan_to_num(data.scores))  # validates the config
    if progress:
        progress(1, 1)
    bank = knn_tensors(keys, data, stack=bool(hp["stack"]), n_neighbors=int(hp["n_neighbors"]))
    return TrainedScorer(
        router_type="knn",
        tensors={**bank, **projection},  # after the stacked fit, which reads the projected keys
        params={"n_neighbors": int(hp["n_neighbors"]), "weights": hp["weights"],
                "prior_strength": float(hp["prior_strength"]), "hparam": hp},
        library="llmrouter.models.KNNRouter (hparam -> sklearn KNeighborsRegressor on per-model scores)",
    )


def project_keys(embeddings: np.ndarray, dims: int | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The bank's keys and the projection serving applies to a query (``proj_mean``, ``proj``):
    none for ``dims`` None or >= the embedding's width."""
    if dims is None or int(dims) >= embeddings.shape[1]:
        return embeddings, {}
    mean = embeddings.mean(0)
    _, _, vt = np.linalg.svd(embeddings - mean, full_matrices=False)
    tensors = {"proj_mean": mean.astype(np.float32), "proj": vt[: int(dims)].astype(np.float32)}
    return project(embeddings, tensors), tensors


def knn_tensors(keys: np.ndarray, data: RoutingData, *, stack: bool = True, ridge: float = RIDGE,
                n_neighbors: int = 80) -> dict[str, np.ndarray]:
    """The neighbour bank; with partial labels also each row's weight, each model's prior,
    which models are sparse and (``stack``) each sparse model's linear fit on the dense ones."""
    out = {"keys": np.asarray(keys, np.float16), "values": np.asarray(data.scores, np.float16)}
    if not data.partial:
        return out
    w = data.weights if data.weights is not None else np.ones(len(data))
    seen = ~np.isnan(data.scores)
    if missing := [m for m, any_seen in zip(data.models, seen.any(axis=0), strict=True) if not any_seen]:
        raise ValueError(f"no row scores {missing}: nothing to learn them from")
    prior = (np.nan_to_num(data.scores) * w[:, None]).sum(0) / (seen * w[:, None]).sum(0)
    counts = seen.sum(axis=0)
    sparse = counts < DENSE_SHARE * counts.max()
    out.update({"weights": np.asarray(w, np.float32), "prior": prior.astype(np.float32),
                "sparse": sparse.astype(np.float32)})
    if stack and sparse.any() and not sparse.all():
        out["stack_coef"] = stack_coefficients(out, data, w, sparse, ridge, n_neighbors)
    return out


def stack_coefficients(bank: dict[str, np.ndarray], data: RoutingData, w: np.ndarray, sparse: np.ndarray,
                       ridge: float, n_neighbors: int) -> np.ndarray:
    """Per sparse model, weighted ridge of its scores on the dense models' KNN estimates.

    Fitted on the rows that score the model, each weighing its inverse propensity (so the
    fit estimates the model's score over all queries, not over the ones the policy sent
    it); the intercept is not penalised. Rows of dense models are zero (unused)."""
    from router_models.inference.scorers import predict_knn

    keys = bank["keys"].astype(np.float32)
    dense_only = {k: v for k, v in bank.items() if k != "sparse"}
    coef = np.zeros((len(data.models), len(data.models) + 1), np.float32)
    rows = np.flatnonzero(~np.isnan(data.scores[:, sparse]).all(axis=1))
    est = np.concatenate([predict_knn(keys[c], dense_only, {"n_neighbors": n_neighbors})
                          for c in np.array_split(rows, max(1, len(rows) // 1024))]) if len(rows) else None
    for j in np.flatnonzero(sparse):
        has = ~np.isnan(data.scores[rows, j])
        if est is None or not has.any():
            continue
        feats = np.concatenate([np.where(sparse[None, :], 0.0, est[has]), np.ones((int(has.sum()), 1))], axis=1)
        sw = w[rows[has]]
        penalty = np.diag([ridge] * len(sparse) + [0.0])
        a = feats.T @ (feats * sw[:, None]) + penalty
        coef[j] = np.linalg.solve(a + 1e-9 * np.eye(len(a)), feats.T @ (sw * data.scores[rows[has], j]))
    return coef
