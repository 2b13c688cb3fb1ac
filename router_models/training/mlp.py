"""MLP router: llmrouter's ``MLPRouter``/``MLPTrainer``, trained on per-model quality.

The library trains ``MLPClassifierNN`` with cross-entropy on ``argmax(performance)``,
which sends the 22 % all-zero tie queries to the first model in file order and ignores
cost. We keep its router, network class, optimiser (Adam, ``alpha`` as weight decay),
epochs and batch size, but give the network one output per model (``num_classes`` = all
models in data order) and train it with binary cross-entropy against each model's score:
``sigmoid(logit_m)`` is then a predicted quality, and cost enters only at request time.

Regularisation chosen by 5-fold cross-validation on the training split (docs/routing.md):
dropout on the hidden activations during training only (the module is unchanged), 20
epochs, and the mean of ``n_seeds`` independently seeded networks (seed variance alone
moved test Q@C_best by +-0.01).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from router_models.data import RoutingData
from router_models.training.scorer import TrainedScorer

DEFAULT_HPARAM: dict[str, Any] = {
    "hidden_layer_sizes": [256],
    "activation": "relu",
    "lr": 0.001,
    "epochs": 20,
    "batch_size": 64,
    "alpha": 0.0001,
    "dropout": 0.2,
    "n_seeds": 3,
    "seed": 0,
}


def train_mlp(
    data: RoutingData,
    embeddings: np.ndarray,
    hparam: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainedScorer:
    """Fit the library MLP on per-model scores; ``progress(epoch, epochs)`` per epoch."""
    import torch

    from router_models.training.llmrouter_compat import build_router, offline_env

    offline_env()  # before llmrouter imports litellm (which would fetch its price map)
    from llmrouter.models.mlprouter.trainer import MLPTrainer

    hp = {**DEFAULT_HPARAM, **(hparam or {})}
    router = build_router("MLPRouter", data, embeddings, hp)
    router.model_to_idx = {m: i for i, m in enumerate(data.models)}
    router.idx_to_model = dict(enumerate(data.models))
    router.num_classes = len(data.models)  # one output per model, not per argmax label
    n_seeds = int(hp["n_seeds"])
    tensors: dict[str, np.ndarray] = {}
    for s in range(n_seeds):
        torch.manual_seed(int(hp["seed"]) + s)
        trainer = _quiet_trainer(MLPTrainer, router)  # fresh network + optimiser per seed
        _fit_quality(trainer, embeddings, data.scores, float(hp["dropout"]), data.weights)
        state = trainer.model.state_dict()
        tensors.update({f"s{s}.{k}": v.detach().numpy().astype(np.float32) for k, v in state.items()})
        if progress:
            progress(s + 1, n_seeds)
    return TrainedScorer(
        router_type="mlp",
        tensors=tensors,
        params={
            "activation": hp["activation"],
            "n_layers": len(hp["hidden_layer_sizes"]) + 1,
            "n_seeds": n_seeds,
            "hparam": hp,
        },
        library="llmrouter.models.MLPRouter + MLPTrainer (MLPClassifierNN, per-model BCE targets)",
    )


def _quiet_trainer(cls: Any, router: Any) -> Any:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return cls(router, device="cpu")


def _fit_quality(trainer: Any, x: np.ndarray, y: np.ndarray, dropout: float,
                 weights: np.ndarray | None = None) -> None:
    """The library's loop (shuffled mini-batches, its optimiser) with a per-model BCE loss
    (``losses.quality_loss``: only observed scores count, rows weighted when ``weights``).

    Dropout is applied to hidden activations here, in training only, so the exported
    module and its inference forward are exactly the library's ``MLPClassifierNN``.
    """
    import torch
    import torch.nn.functional as F

    from router_models.training.losses import quality_loss

    xs, ys = torch.from_numpy(np.asarray(x, np.float32)), torch.from_numpy(np.asarray(y, np.float32))
    ws = torch.from_numpy(np.asarray(weights, np.float32)) if weights is not None else None
    model, opt = trainer.model, trainer.optimizer
    act = model._get_activation()
    model.train()
    for _ in range(trainer.epochs):
        perm = torch.randperm(len(xs))
        for start in range(0, len(xs), trainer.batch_size):
            idx = perm[start : start + trainer.batch_size]
            h = xs[idx]
            for layer in model.layers[:-1]:
                h = F.dropout(act(layer(h)), p=dropout, training=True)
            loss = quality_loss(model.layers[-1](h), ys[idx], ws[idx] if ws is not None else None)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
