"""MF router: llmrouter's ``MFRouter``/``MFRouterTrainer`` (bilinear MF), per-model quality.

The library scores ``delta(m, q) = w . (normalize(P_m) * W q)`` and trains it pairwise
(argmax winner vs every other model), so tied queries crown the first model in file order
and the scores are uncalibrated. We keep its ``BilinearMF`` module (``text_dim=384`` for
MiniLM), latent size, optimiser and batch size, and add one learned bias per model so
``sigmoid(delta(m, q) + b_m)`` predicts model m's score. The loss is pointwise BCE on
every (query, model) score plus the library's pairwise logistic loss restricted to
*strictly* better/worse pairs, so ties contribute no spurious preference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from router_models.data import RoutingData
from router_models.training.scorer import TrainedScorer

DEFAULT_HPARAM: dict[str, Any] = {
    "latent_dim": 128,
    "text_dim": 384,
    "lr": 0.002,
    "epochs": 40,
    "batch_size": 64,
    "pairwise_weight": 0.5,
    "seed": 0,
}


def train_mf(
    data: RoutingData,
    embeddings: np.ndarray,
    hparam: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainedScorer:
    """Fit the library's BilinearMF (+ per-model bias) on per-model scores."""
    import torch

    from router_models.training.llmrouter_compat import build_router

    hp = {**DEFAULT_HPARAM, **(hparam or {})}
    torch.manual_seed(int(hp["seed"]))
    router = build_router("MFRouter", data, embeddings, hp)
    if list(router.model_to_idx) != list(data.models):
        raise RuntimeError("llmrouter MFRouter model order differs from the data's")
    trainer = _make_trainer(router)
    bias = torch.nn.Parameter(torch.zeros(len(data.models)))
    trainer.optimizer.add_param_group({"params": [bias]})
    _fit(trainer.model, bias, trainer, embeddings, data.scores, float(hp["pairwise_weight"]), progress)
    tensors = {k: v.detach().numpy().astype(np.float32) for k, v in trainer.model.state_dict().items()}
    tensors["bias"] = bias.detach().numpy().astype(np.float32)
    return TrainedScorer(
        router_type="mf",
        tensors=tensors,
        params={"hparam": hp},
        library="llmrouter.models.MFRouter + MFRouterTrainer (BilinearMF + per-model bias, BCE + strict pairwise)",
    )


def _make_trainer(router: Any) -> Any:
    import contextlib
    import io

    from router_models.training.llmrouter_compat import offline_env

    offline_env()  # before llmrouter imports litellm (which would fetch its price map)
    from llmrouter.models.mfrouter.trainer import MFRouterTrainer

    with contextlib.redirect_stdout(io.StringIO()):
        return MFRouterTrainer(router, device="cpu")


def _fit(
    model: Any,
    bias: Any,
    trainer: Any,
    x: np.ndarray,
    y: np.ndarray,
    pair_w: float,
    progress: Callable[[int, int], None] | None,
) -> None:
    import torch
    import torch.nn.functional as F

    xs, ys = torch.from_numpy(np.asarray(x, np.float32)), torch.from_numpy(np.asarray(y, np.float32))
    opt = trainer.optimizer
    for epoch in range(trainer.epochs):
        perm = torch.randperm(len(xs))
        for start in range(0, len(xs), trainer.batch_size):
            idx = perm[start : start + trainer.batch_size]
            logits = mf_logits(model, xs[idx]) + bias
            loss = F.binary_cross_entropy_with_logits(logits, ys[idx])
            if pair_w > 0:
                diff = logits[:, :, None] - logits[:, None, :]  # [b, winner, loser]
                better = (ys[idx][:, :, None] > ys[idx][:, None, :]).float()
                pair = (F.softplus(-diff) * better).sum() / better.sum().clamp(min=1.0)
                loss = loss + pair_w * pair
            opt.zero_grad()
            loss.backward()
            opt.step()
        if progress:
            progress(epoch + 1, trainer.epochs)


def mf_logits(model: Any, q: Any) -> Any:
    """``BilinearMF.score_all`` for a batch: (b, text_dim) -> (b, n_models)."""
    import torch.nn.functional as F

    proj = model.text_proj(q)
    p_all = F.normalize(model.P.weight, p=2, dim=-1)
    return (proj[:, None, :] * p_all[None, :, :]) @ model.classifier.weight[0]
