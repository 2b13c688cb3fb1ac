"""The fine-tuned router: trains the encoder's top layers, and serving uses those layers."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from router_models.artifacts import ArtifactError
from router_models.embedding import Embedder, EmbedderConfig, encoder_digest
from router_models.evaluation.protocol import evaluate
from router_models.inference.learned import LearnedRouter
from tests.unit.router_models.conftest import manifest_of, train_slice

# The fixture is one fine-tune (no cross-validation: these tests read the artifact, not its
# CV metrics, and the CV loop is tested on cheaper routers); it took 224-377 s with 2 folds
# (three fine-tunes) in clean-clone runs on a loaded machine. Allow for a loaded one.
pytestmark = pytest.mark.timeout(900)

TEXTS = ["What is the capital of Australia?", "Write a python function to reverse a list.", "x" * 5000]


@pytest.fixture(scope="module")
def trained_finetuned(data_dir: Path, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tuned layer, two epochs, on the 1,200-row slice, through the real pipeline."""
    out = tmp_path_factory.mktemp("artifact") / "finetuned"
    return train_slice(data_dir, cache_dir, out, "finetuned", {"tuned_layers": 1, "epochs": 2}, folds=1)


def test_manifest_records_the_tuned_encoder(trained_finetuned: Path) -> None:
    manifest = manifest_of(trained_finetuned)
    assert manifest["router_type"] == "finetuned"
    assert manifest["params"]["tuned_layers"] == 1
    digest = manifest["embedder"]["encoder_sha256"]
    assert isinstance(digest, str) and len(digest) == 64
    from safetensors.numpy import load_file

    weights = load_file(str(trained_finetuned / "weights.safetensors"))
    encoder = {k.removeprefix("encoder."): v for k, v in weights.items() if k.startswith("encoder.")}
    assert encoder and all(k.startswith("encoder.layer.5.") for k in encoder)
    assert encoder_digest(encoder) == digest


def test_serving_embeds_with_the_tuned_layers(trained_finetuned: Path, embedder: Embedder) -> None:
    router = LearnedRouter.load(trained_finetuned)
    tuned = router.embedder.embed(TEXTS)
    base = embedder.embed(TEXTS)
    assert tuned.shape == base.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(tuned, axis=1), 1.0, atol=1e-5)
    assert np.all(np.sum(tuned * base, axis=1) < 0.9999)  # a different space, not the bundled one


def test_loaded_router_predicts_what_training_predicted(trained_finetuned: Path) -> None:
    from router_models.training.pipeline import predict_scorer
    from router_models.training.scorer import TrainedScorer

    manifest = manifest_of(trained_finetuned)
    from safetensors.numpy import load_file

    tensors = load_file(str(trained_finetuned / "weights.safetensors"))
    scorer = TrainedScorer("finetuned", tensors, manifest["params"], embedder=EmbedderConfig(**manifest["embedder"]))
    expected = predict_scorer(scorer, TEXTS, np.zeros((3, 384), np.float32))
    got = LearnedRouter.load(trained_finetuned).predict(TEXTS)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_curve_is_sane(trained_finetuned: Path, eval_split) -> None:
    train, held = eval_split
    router = LearnedRouter.load(trained_finetuned)
    rep = evaluate(router.predict(held.queries), held.scores, held.prices, held.models, train.scores.mean(0))
    costs = [p.cost for p in rep.curve]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(costs)) and costs[0] > costs[-1]
    assert max(p.quality for p in rep.curve) > rep.random_quality + 0.05
    assert rep.q_at_c_best > 0.95 * rep.q_best


def test_wrong_encoder_digest_is_refused(trained_finetuned: Path, tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(trained_finetuned, bad)
    manifest = manifest_of(bad)
    manifest["embedder"]["encoder_sha256"] = "0" * 64
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="encoder weights refused"):
        LearnedRouter.load(bad)


def test_bundled_embedder_cannot_serve_a_tuned_artifact(trained_finetuned: Path, embedder: Embedder) -> None:
    with pytest.raises(ArtifactError, match="needs embedder"):
        LearnedRouter.load(trained_finetuned, embedder=embedder)


def test_embedder_checks_overrides() -> None:
    good = {"encoder.layer.5.output.dense.bias": np.zeros(384, np.float32)}
    with pytest.raises(ValueError, match="needs the fine-tuned encoder"):
        Embedder(EmbedderConfig(encoder_sha256=encoder_digest(good)))
    with pytest.raises(ValueError, match="do not match"):
        Embedder(EmbedderConfig(encoder_sha256="0" * 64), encoder_overrides=good)
    wrong_shape = {"encoder.layer.5.output.dense.bias": np.zeros(3, np.float32)}
    with pytest.raises(ValueError, match="does not match a MiniLM weight"):
        Embedder(EmbedderConfig(encoder_sha256=encoder_digest(wrong_shape)), encoder_overrides=wrong_shape)


@pytest.mark.parametrize("layers", [0, 7])
def test_tuned_layers_out_of_range_is_refused(layers: int, eval_split) -> None:
    from router_models.training.finetune import train_finetuned

    train, _ = eval_split
    with pytest.raises(ValueError, match="tuned_layers must be in"):
        train_finetuned(train.subset(np.arange(10)), np.zeros((10, 384), np.float32), {"tuned_layers": layers})
