"""Train on a slice, check the curve is sane, and that numpy scoring equals the library models."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from router_models.embedding_cache import embed_cached
from router_models.evaluation.protocol import evaluate
from router_models.inference.learned import LearnedRouter
from router_models.inference.scorers import PREDICTORS
from router_models.training.knn import train_knn
from router_models.training.mf import mf_logits, train_mf
from tests.unit.router_models.conftest import manifest_of


def _embed(split, embedder, cache_dir):
    return embed_cached(split.queries, embedder.config, cache_dir=cache_dir, embedder=embedder)


def test_trained_router_curve_is_sane(trained_mlp: Path, eval_split, embedder, cache_dir) -> None:
    train, held = eval_split
    router = LearnedRouter.load(trained_mlp, embedder=embedder)
    pred = router.predict_embeddings(_embed(held, embedder, cache_dir))
    rep = evaluate(pred, held.scores, held.prices, held.models, train.scores.mean(0))
    costs = [p.cost for p in rep.curve]
    qualities = [p.quality for p in rep.curve]
    # raising lambda never buys a dearer model, per query, so mean cost is non-increasing
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(costs))
    assert costs[0] > costs[-1]
    # quality rises with spend: the expensive end beats the cheap end, and both beat random
    assert max(qualities[:10]) > qualities[-1]
    assert max(qualities) > rep.random_quality + 0.05
    assert rep.q_at_c_best > 0.95 * rep.q_best
    cv = manifest_of(trained_mlp)["eval"]["cross_validation"]
    assert cv["default_lambda"] >= 0 and cv["folds"] == 2


def test_mlp_numpy_forward_matches_library_module(trained_mlp: Path, eval_split, embedder, cache_dir) -> None:
    import torch
    from llmrouter.models.mlprouter.router import MLPClassifierNN

    router = LearnedRouter.load(trained_mlp, embedder=embedder)
    hp = router.manifest["params"]["hparam"]
    net = MLPClassifierNN(384, hp["hidden_layer_sizes"], len(router.models), hp["activation"])
    from safetensors.numpy import load_file

    state = {k[3:]: torch.from_numpy(v) for k, v in load_file(str(trained_mlp / "weights.safetensors")).items()}
    net.load_state_dict(state)
    x = _embed(eval_split[1], embedder, cache_dir)[:50]
    with torch.no_grad():
        expected = torch.sigmoid(net(torch.from_numpy(x))).numpy()
    np.testing.assert_allclose(router.predict_embeddings(x), expected, atol=1e-5)


def test_mf_numpy_forward_matches_library_module(eval_split, embedder, cache_dir) -> None:
    import torch
    from llmrouter.models.mfrouter.router import BilinearMF

    train, held = eval_split
    x, xe = _embed(train, embedder, cache_dir), _embed(held, embedder, cache_dir)[:40]
    scorer = train_mf(train, x, {"epochs": 2, "latent_dim": 16})
    model = BilinearMF(16, len(train.models), 384)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in scorer.tensors.items() if k != "bias"})
    with torch.no_grad():
        single = model.score_all(model.project_text(torch.from_numpy(xe[0])))  # the library's own path
        batch = mf_logits(model, torch.from_numpy(xe))
    np.testing.assert_allclose(batch[0].numpy(), single.numpy(), atol=1e-5)
    expected = torch.sigmoid(batch + torch.from_numpy(scorer.tensors["bias"])).numpy()
    np.testing.assert_allclose(PREDICTORS["mf"](xe, scorer.tensors, scorer.params), expected, atol=1e-5)


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_knn_numpy_matches_sklearn(weights: str, eval_split, embedder, cache_dir) -> None:
    from sklearn.neighbors import KNeighborsRegressor

    train, held = eval_split
    x, xe = _embed(train, embedder, cache_dir), _embed(held, embedder, cache_dir)[:40]
    scorer = train_knn(train, x, {"n_neighbors": 15, "weights": weights})
    keys = scorer.tensors["keys"].astype(np.float32)
    reg = KNeighborsRegressor(n_neighbors=15, metric="cosine", weights=weights).fit(keys, train.scores)
    t32 = {k: v.astype(np.float32) for k, v in scorer.tensors.items()}
    np.testing.assert_allclose(PREDICTORS["knn"](xe, t32, scorer.params), reg.predict(xe), atol=2e-3)


def test_a_projected_knn_is_sklearns_knn_on_the_projected_keys(eval_split, embedder, cache_dir) -> None:
    from sklearn.neighbors import KNeighborsRegressor

    train, held = eval_split
    x, xe = _embed(train, embedder, cache_dir), _embed(held, embedder, cache_dir)[:40]
    plain = train_knn(train, x, {"n_neighbors": 15})
    assert "proj" not in plain.tensors and plain.tensors["keys"].shape == (len(train), 384)  # the default
    scorer = train_knn(train, x, {"n_neighbors": 15, "dims": 32})
    t32 = {k: v.astype(np.float32) for k, v in scorer.tensors.items()}
    assert t32["proj"].shape == (32, 384) and t32["keys"].shape == (len(train), 32)
    centred = xe - x.mean(0)
    z = centred @ t32["proj"].T
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    reg = KNeighborsRegressor(n_neighbors=15, metric="cosine").fit(t32["keys"], train.scores)
    np.testing.assert_allclose(PREDICTORS["knn"](xe, t32, scorer.params), reg.predict(z), atol=2e-3)
    assert np.abs(np.linalg.norm(t32["keys"], axis=1) - 1).max() < 1e-2  # unit length, stored as float16
