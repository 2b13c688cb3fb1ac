"""KNN router: llmrouter's ``KNNRouter`` config, as k-nearest-neighbour *regression*.

The library fits ``KNeighborsClassifier(**hparam)`` on argmax labels. We build the same
router and hand its ``hparam`` (``n_neighbors``, ``metric``, ``weights``) to
``KNeighborsRegressor`` on the per-model score matrix: the prediction for model m is the
(weighted) mean score of m on the k nearest training queries. The artifact stores the
training embeddings (float16) and scores; serving recomputes neighbours in numpy
(``inference.scorers``), so no sklearn object is ever pickled.

On partial labels (decision-log feedback) a neighbour only counts for the models it has a
score for, weighted by its row weight (inverse propensity); a model none of the k
neighbours scored gets its weighted mean over all rows (the ``prior`` tensor).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from router_models.data import RoutingData
from router_models.training.scorer import TrainedScorer

DEFAULT_HPARAM: dict[str, Any] = {"n_neighbors": 80, "metric": "cosine", "weights": "uniform"}


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
    router = build_router("KNNRouter", data, embeddings, hp)
    reg = KNeighborsRegressor(**router.cfg["hparam"])
    reg.fit(np.asarray(embeddings, np.float32), np.nan_to_num(data.scores))  # validates the config
    if progress:
        progress(1, 1)
    return TrainedScorer(
        router_type="knn",
        tensors=knn_tensors(embeddings, data),
        params={"n_neighbors": int(hp["n_neighbors"]), "weights": hp["weights"], "hparam": hp},
        library="llmrouter.models.KNNRouter (hparam -> sklearn KNeighborsRegressor on per-model scores)",
    )


def knn_tensors(keys: np.ndarray, data: RoutingData) -> dict[str, np.ndarray]:
    """The neighbour bank; with partial labels also each row's weight and each model's prior."""
    out = {"keys": np.asarray(keys, np.float16), "values": np.asarray(data.scores, np.float16)}
    if data.partial:
        w = data.weights if data.weights is not None else np.ones(len(data))
        seen = ~np.isnan(data.scores)
        if missing := [m for m, any_seen in zip(data.models, seen.any(axis=0), strict=True) if not any_seen]:
            raise ValueError(f"no row scores {missing}: nothing to learn them from")
        prior = (np.nan_to_num(data.scores) * w[:, None]).sum(0) / (seen * w[:, None]).sum(0)
        out.update({"weights": np.asarray(w, np.float32), "prior": prior.astype(np.float32)})
    return out
