"""Fine-tuned router: MiniLM's top layers trained on per-model quality, plus MLP and KNN.

The other routers read a frozen MiniLM embedding, built to tell paraphrases apart, not
to tell which model will answer a query. Here the top ``tuned_layers`` encoder layers
(2 of 6) are trained jointly with llmrouter's ``MLPClassifierNN`` head (one output per
model, BCE against each model's score, as in ``mlp``); the lower layers stay frozen, so
their hidden states are computed once. The KNN part (``KNNRouter``'s hyperparameters)
then averages neighbours in the *tuned* space, embedded by the serving embedder itself
(int8 when quantised), so training and serving see the same vectors.

The artifact carries the tuned layers as ``encoder.*`` tensors (float16) and the
manifest's embedder gets their digest; the serving embedder loads them over the bundled
weights. Chosen by 5-fold cross-validation on the training split (docs/routing.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from router_models.data import RoutingData
from router_models.embedding import ENCODER_PREFIX, Embedder, EmbedderConfig, encoder_digest, model_dir
from router_models.training.knn import PRIOR_STRENGTH, knn_tensors
from router_models.training.scorer import TrainedScorer

DEFAULT_HPARAM: dict[str, Any] = {
    "tuned_layers": 2,
    "epochs": 4,
    "batch_size": 32,
    "lr_encoder": 5e-5,
    "lr_head": 1e-3,
    "weight_decay": 0.01,
    "alpha": 1e-4,
    "hidden_layer_sizes": [256],
    "activation": "relu",
    "dropout": 0.2,
    "n_neighbors": 80,
    "seed": 0,
}


def train_finetuned(
    data: RoutingData,
    embeddings: np.ndarray,
    hparam: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    embedder: EmbedderConfig | None = None,
) -> TrainedScorer:
    """Fine-tune on ``data.queries`` (``embeddings`` unused: the space itself is trained)."""
    import torch

    from router_models.training.llmrouter_compat import offline_env

    offline_env()
    from llmrouter.models.mlprouter.router import MLPClassifierNN

    hp = {**DEFAULT_HPARAM, **(hparam or {})}
    config = embedder or EmbedderConfig()
    torch.manual_seed(int(hp["seed"]))
    from router_models.minilm import load_minilm

    base = Embedder(replace(config, quantize=False, encoder_sha256=None))  # tokenises and clips as served
    encoder = load_minilm(model_dir())  # torch: the layers being trained
    n_layers = len(encoder.encoder.layer)
    if not 1 <= int(hp["tuned_layers"]) <= n_layers:
        raise ValueError(f"tuned_layers must be in [1, {n_layers}], got {hp['tuned_layers']}")
    first = n_layers - int(hp["tuned_layers"])
    frozen = _frozen_states(base, encoder, data.queries, first)
    head = MLPClassifierNN(config.dim, list(hp["hidden_layer_sizes"]), len(data.models), hp["activation"])
    tuned = encoder.encoder.layer[first:]
    weights = torch.from_numpy(np.asarray(data.weights, np.float32)) if data.weights is not None else None
    _fit(encoder, first, head, frozen, torch.from_numpy(np.asarray(data.scores, np.float32)), hp, progress, weights)
    overrides = {
        f"encoder.layer.{first + i}.{k}": v.detach().numpy().astype(np.float16)
        for i, layer in enumerate(tuned)
        for k, v in layer.state_dict().items()
    }
    serving = replace(config, encoder_sha256=encoder_digest(overrides))
    keys = Embedder(serving, encoder_overrides=overrides).embed(data.queries)  # the KNN bank, as served
    tensors = {f"{ENCODER_PREFIX}{k}": v for k, v in overrides.items()}
    tensors.update({f"mlp.s0.{k}": v.detach().numpy().astype(np.float32) for k, v in head.state_dict().items()})
    tensors.update({f"knn.{k}": v for k, v in knn_tensors(keys, data, n_neighbors=int(hp["n_neighbors"])).items()})
    return TrainedScorer(
        router_type="finetuned",
        tensors=tensors,
        params={"components": _components(hp, len(head.layers)), "tuned_layers": int(hp["tuned_layers"]), "hparam": hp},
        library="MiniLM top layers fine-tuned with llmrouter MLPRouter's MLPClassifierNN head; KNNRouter hparams",
        embedder=serving,
    )


def _components(hp: dict[str, Any], n_layers: int) -> dict[str, dict[str, Any]]:
    """``predict_ensemble`` parameters: the head as a one-seed ``mlp``, the bank as a ``knn``."""
    return {
        "mlp": {"router_type": "mlp", "activation": hp["activation"], "n_layers": n_layers, "n_seeds": 1},
        "knn": {"router_type": "knn", "n_neighbors": int(hp["n_neighbors"]), "weights": "uniform",
                "prior_strength": PRIOR_STRENGTH},
    }


def _frozen_states(base: Embedder, encoder: Any, queries: list[str], stop: int) -> list[Any]:
    """Each query's hidden states after the frozen layers, unpadded (computed once)."""
    import torch

    order = np.argsort([len(q) for q in queries], kind="stable")
    states: list[Any] = [None] * len(queries)
    with torch.no_grad():
        for start in range(0, len(order), 64):
            idx = order[start : start + 64]
            enc = base.tokenizer.encode_batch([base.clip(queries[i]) for i in idx])
            ids = torch.tensor([e.ids for e in enc], dtype=torch.long)
            mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.long)
            hidden = encoder.run_layers(encoder.embed_tokens(ids), mask, 0, stop)
            for row, i in enumerate(idx):
                states[i] = hidden[row, : int(mask[row].sum())].clone()
    return states


def _fit(encoder: Any, first: int, head: Any, frozen: list[Any], y: Any, hp: dict[str, Any], progress: Any,
         weights: Any | None = None) -> None:
    """AdamW on layers ``first..`` and the head; BCE per observed score (``quality_loss``);
    dropout on head activations."""
    import torch
    import torch.nn.functional as F

    from router_models.minilm import mean_pool
    from router_models.training.losses import quality_loss

    tuned, stop = encoder.encoder.layer[first:], len(encoder.encoder.layer)
    params = [p for layer in tuned for p in layer.parameters()]
    opt = torch.optim.AdamW(
        [
            {"params": params, "lr": hp["lr_encoder"], "weight_decay": hp["weight_decay"]},
            {"params": head.parameters(), "lr": hp["lr_head"], "weight_decay": hp["alpha"]},
        ]
    )
    act = head._get_activation()
    tuned.train()
    head.train()
    epochs, bs = int(hp["epochs"]), int(hp["batch_size"])
    for epoch in range(epochs):
        perm = torch.randperm(len(frozen))
        for start in range(0, len(perm), bs):
            idx = perm[start : start + bs].tolist()
            x, mask = _pad([frozen[i] for i in idx])
            h = mean_pool(encoder.run_layers(x, mask, first, stop), mask)
            for layer in head.layers[:-1]:
                h = F.dropout(act(layer(h)), p=float(hp["dropout"]), training=True)
            loss = quality_loss(head.layers[-1](h), y[idx], weights[idx] if weights is not None else None)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if progress:
            progress(epoch + 1, epochs)
    tuned.eval()
    head.eval()


def _pad(rows: list[Any]) -> tuple[Any, Any]:
    import torch

    n = max(len(r) for r in rows)
    x = torch.zeros(len(rows), n, rows[0].shape[1])
    mask = torch.zeros(len(rows), n, dtype=torch.long)
    for i, r in enumerate(rows):
        x[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return x, mask
