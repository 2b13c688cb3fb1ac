"""KNN router: llmrouter's ``KNNRouter`` config, as k-nearest-neighbour *regression*.

The library fits ``KNeighborsClassifier(**hparam)`` on argmax labels. We build the same
router and hand its ``hparam`` (``n_neighbors``, ``metric``, ``weights``) to
``KNeighborsRegressor`` on the per-model score matrix: the prediction for model m is the
(weighted) mean score of m on the k nearest training queries. The artifact stores the
training embeddings (float16) and scores; serving recomputes neighbours in numpy
(``inference.scorers``), so no sklearn object is ever pickled.
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
    reg.fit(np.asarray(embeddings, np.float32), data.scores)  # validates the config
    if progress:
        progress(1, 1)
    return TrainedScorer(
        router_type="knn",
        tensors={
            "keys": np.asarray(embeddings, np.float16),
            "values": np.asarray(data.scores, np.float16),
        },
        params={"n_neighbors": int(hp["n_neighbors"]), "weights": hp["weights"], "hparam": hp},
        library="llmrouter.models.KNNRouter (hparam -> sklearn KNeighborsRegressor on per-model scores)",
    )
