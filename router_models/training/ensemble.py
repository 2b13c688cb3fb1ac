"""Ensemble router: the mean of the MLP's and the KNN's predicted quality.

Earns its place: in 5-fold cross-validation on the training split the two err
differently (a smooth global fit vs. local neighbourhood averages) and their mean beat
either alone on both Q@C_best and C@Q_best (docs/routing.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from router_models.data import RoutingData
from router_models.training.knn import train_knn
from router_models.training.mlp import train_mlp
from router_models.training.scorer import TrainedScorer

COMPONENTS: dict[str, Callable[..., TrainedScorer]] = {"mlp": train_mlp, "knn": train_knn}


def train_ensemble(
    data: RoutingData,
    embeddings: np.ndarray,
    hparam: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainedScorer:
    """``hparam`` may hold one dict per component name (``{"mlp": {...}, "knn": {...}}``)."""
    tensors: dict[str, np.ndarray] = {}
    components: dict[str, dict[str, Any]] = {}
    libraries = []
    for i, (name, train) in enumerate(COMPONENTS.items()):
        sub = train(data, embeddings, (hparam or {}).get(name))
        tensors.update({f"{name}.{k}": v for k, v in sub.tensors.items()})
        components[name] = {**sub.params, "router_type": sub.router_type}
        libraries.append(sub.library)
        if progress:
            progress(i + 1, len(COMPONENTS))
    return TrainedScorer("ensemble", tensors, {"components": components}, library=" + ".join(libraries))
