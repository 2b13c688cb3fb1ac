"""Predicted per-model quality from artifact arrays, in numpy only.

The serving replica must not import llmrouter (7-9 s, ~700 MB) and needs no torch here
either: each router type is a few matrix products over the weights the trainer exported.
Every function maps (n, 384) normalised embeddings to (n, n_models) quality in [0, 1] and
is pure, hence thread-safe. ``tests/unit/router_models`` checks each one against the
torch/sklearn model it was trained as.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

Tensors = Mapping[str, np.ndarray]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "logistic": _sigmoid,
    "identity": lambda x: x,
}


def predict_mlp(x: np.ndarray, t: Tensors, params: Mapping[str, object]) -> np.ndarray:
    """Mean over seeds of llmrouter's ``MLPClassifierNN`` forward + sigmoid (BCE logits)."""
    act = _ACTIVATIONS[str(params.get("activation", "relu"))]
    n_layers = int(params["n_layers"])  # type: ignore[call-overload]
    n_seeds = int(params.get("n_seeds", 1))  # type: ignore[call-overload]
    out = np.zeros((len(x), 0))
    for s in range(n_seeds):
        h = x
        for i in range(n_layers):
            h = h @ t[f"s{s}.layers.{i}.weight"].T + t[f"s{s}.layers.{i}.bias"]
            if i < n_layers - 1:
                h = act(h)
        out = _sigmoid(h) if s == 0 else out + _sigmoid(h)
    return out / n_seeds


def predict_mf(x: np.ndarray, t: Tensors, params: Mapping[str, object]) -> np.ndarray:
    """llmrouter ``BilinearMF.score_all`` plus the per-model bias, then sigmoid."""
    proj = x @ t["text_proj.weight"].T
    p = t["P.weight"]
    p_norm = p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
    model_vecs = p_norm * t["classifier.weight"][0][None, :]
    return _sigmoid(proj @ model_vecs.T + t["bias"])


def project(x: np.ndarray, t: Tensors) -> np.ndarray:
    """``x`` on the KNN's principal components (``training.knn.project_keys``), unit length."""
    p = (x - t["proj_mean"]) @ t["proj"].T
    return (p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def predict_knn(x: np.ndarray, t: Tensors, params: Mapping[str, object]) -> np.ndarray:
    """Mean score of the k nearest training queries by cosine (sklearn semantics); a bank
    with ``proj`` holds projected keys, so the query is projected the same way first."""
    if "proj" in t:
        x = project(x, t)
    keys, values = t["keys"], t["values"]
    k = min(int(params["n_neighbors"]), len(keys))  # type: ignore[call-overload]
    sims = x @ keys.T
    idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    if params.get("weights") == "distance":
        dist = 1.0 - np.take_along_axis(sims, idx, axis=1)
        w = 1.0 / np.maximum(dist, 1e-9)
    else:
        w = np.ones(idx.shape, dtype=np.float32)
    if "prior" in t:  # partial labels: each model over the neighbours that scored it
        return _partial_mean(w * t["weights"][idx], values[idx], t, float(params.get("prior_strength", 0.0)))
    w = w / w.sum(axis=1, keepdims=True)
    return np.einsum("nk,nkm->nm", w, values[idx])


def _partial_mean(w: np.ndarray, vals: np.ndarray, t: Tensors, strength: float) -> np.ndarray:
    """Weighted mean of the neighbours' scores that exist (NaN: not scored), shrunk toward a prior.

    Without ``sparse`` (artifacts of the first loop), a model none of the neighbours scored
    gets ``prior`` and the others their plain mean. With it, each sparse model's estimate is
    ``(num + strength * prior_q) / (den + strength)``: ``strength`` pseudo-weight of a
    per-query prior ``prior_q``, which is the model's global mean or, with ``stack_coef``,
    a linear fit on the dense models' estimates for this query (``training.knn``).
    """
    seen = ~np.isnan(vals)
    num = np.einsum("nk,nkm->nm", w, np.where(seen, vals, 0.0))
    den = np.einsum("nk,nkm->nm", w, seen.astype(w.dtype))
    prior = np.broadcast_to(t["prior"][None, :], num.shape)
    mean = np.where(den > 0, num / np.maximum(den, 1e-12), prior)
    if "sparse" not in t:
        return mean
    sparse = t["sparse"] > 0
    if "stack_coef" in t:
        feats = np.concatenate([np.where(sparse[None, :], 0.0, mean), np.ones((len(mean), 1))], axis=1)
        prior = np.where(sparse[None, :], np.clip(feats @ t["stack_coef"].T, 0.0, 1.0), prior)
    total = den + strength
    shrunk = np.where(total > 0, (num + strength * prior) / np.maximum(total, 1e-12), prior)
    return np.where(sparse[None, :], shrunk, mean)


def predict_ensemble(x: np.ndarray, t: Tensors, params: Mapping[str, object]) -> np.ndarray:
    """Mean of the component routers' predictions (tensors prefixed ``<component>.``)."""
    parts = []
    for name, sub_params in params["components"].items():  # type: ignore[union-attr]
        prefix = f"{name}."
        sub = {k[len(prefix) :]: v for k, v in t.items() if k.startswith(prefix)}
        parts.append(PREDICTORS[sub_params["router_type"]](x, sub, sub_params))
    return np.mean(parts, axis=0)


PREDICTORS: dict[str, Callable[[np.ndarray, Tensors, Mapping[str, object]], np.ndarray]] = {
    "mlp": predict_mlp,
    "mf": predict_mf,
    "knn": predict_knn,
    "ensemble": predict_ensemble,
    "finetuned": predict_ensemble,  # MLP + KNN over the tuned embedder's vectors
}
