from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from router_models.artifacts import ArtifactError, load_artifact, write_manifest
from router_models.artifacts.signing import SIGNING_KEY_ENV
from router_models.inference.learned import LearnedRouter
from router_models.training.pipeline import TrainConfig, train

KEY = b"test-signing-key"
TEXTS = ["What is the capital of France?", "Solve 12 * 7 + 3.", "Which house has the tulips?"]


@pytest.fixture
def artifact(trained_mlp: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "art"
    shutil.copytree(trained_mlp, dst)
    return dst


def _load(path: Path, embedder, **kw) -> LearnedRouter:
    return LearnedRouter.load(path, embedder=embedder, **kw)


def test_round_trip_predicts_per_model_quality(artifact: Path, embedder) -> None:
    router = _load(artifact, embedder)
    pred = router.predict(TEXTS)
    assert pred.shape == (3, len(router.models)) and pred.dtype == np.float32
    assert np.all((pred >= 0) & (pred <= 1))
    again = _load(artifact, embedder).predict(TEXTS)
    np.testing.assert_allclose(pred, again, rtol=0, atol=1e-6)
    assert router.default_lambda == json.loads((artifact / "manifest.json").read_text())["default_lambda"]
    m = router.manifest
    assert m["embedder"]["dim"] == 384 and m["training_data"]["sha256"]
    assert set(m["files"]) == {"weights.safetensors"} and not list(artifact.glob("*.pkl"))


def test_tampered_weights_are_refused(artifact: Path, embedder) -> None:
    weights = artifact / "weights.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-5] ^= 0x01
    weights.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="sha256"):
        _load(artifact, embedder)


def test_edited_manifest_with_key_is_refused(artifact: Path, tmp_path: Path, embedder) -> None:
    signed = tmp_path / "signed"
    shutil.copytree(artifact, signed)
    manifest = json.loads((signed / "manifest.json").read_text())
    write_manifest(signed, manifest, ["weights.safetensors"], signing_key=KEY)
    assert _load(signed, embedder, signing_key=KEY).models
    manifest["default_lambda"] = 0.0
    (signed / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="bad signature"):
        _load(signed, embedder, signing_key=KEY)


def test_unsigned_is_refused_when_a_key_is_configured(artifact: Path, embedder, monkeypatch) -> None:
    assert not (artifact / "manifest.sig").exists()
    with pytest.raises(ArtifactError, match=r"manifest\.sig is missing"):
        _load(artifact, embedder, signing_key=KEY)
    monkeypatch.setenv(SIGNING_KEY_ENV, "from-env")
    with pytest.raises(ArtifactError, match="missing"):
        _load(artifact, embedder)


def test_wrong_key_is_refused(artifact: Path, embedder) -> None:
    manifest = json.loads((artifact / "manifest.json").read_text())
    write_manifest(artifact, manifest, ["weights.safetensors"], signing_key=b"another-key")
    with pytest.raises(ArtifactError, match="bad signature"):
        _load(artifact, embedder, signing_key=KEY)


class _Constant:
    """Stands in for a pickled predictor; module-level so pickle can find it."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.full((len(x), 9), 0.5)


def _pickle_artifact(artifact: Path) -> Path:
    manifest = json.loads((artifact / "manifest.json").read_text())
    (artifact / "weights.safetensors").unlink()
    (artifact / "model.pkl").write_bytes(pickle.dumps(_Constant()))
    manifest["router_type"] = "pickle"
    write_manifest(artifact, manifest, ["model.pkl"])
    return artifact


def test_pickle_needs_explicit_opt_in(artifact: Path, embedder) -> None:
    _pickle_artifact(artifact)
    with pytest.raises(ArtifactError, match="pickle"):
        _load(artifact, embedder)
    router = _load(artifact, embedder, allow_pickle=True)
    assert router.predict(["x"]).tolist() == [[0.5] * 9]


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("format_version", 99, "format_version"),
        ("embedder", {"name": "allenai/longformer-base-4096", "dim": 768, "max_seq_length": 4096}, "embedder"),
        ("router_type", "svm-of-the-future", "router type"),
    ],
)
def test_incompatible_manifest_is_refused(artifact: Path, embedder, field: str, value: object, match: str) -> None:
    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest[field] = value
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=match):
        load_artifact(artifact) if field == "format_version" else _load(artifact, embedder)


def test_artifact_error_is_one_line_and_picklable() -> None:
    err = ArtifactError("first line\nsecond line")
    assert "\n" not in str(err)
    clone = pickle.loads(pickle.dumps(err))
    assert isinstance(clone, ArtifactError) and str(clone) == str(err)


def test_training_signs_when_key_given(data_dir: Path, cache_dir: Path, tmp_path: Path, embedder) -> None:
    cfg = TrainConfig(
        router_type="knn",
        data=data_dir / "train.jsonl",
        out=tmp_path / "knn",
        folds=1,
        cache_dir=cache_dir,
        signing_key=KEY,
    )
    train(cfg)
    assert (tmp_path / "knn" / "manifest.sig").exists()
    assert _load(tmp_path / "knn", embedder, signing_key=KEY).router_type == "knn"


def test_predict_is_thread_safe(artifact: Path, embedder) -> None:
    from concurrent.futures import ThreadPoolExecutor

    router = _load(artifact, embedder)
    texts = [f"question {i}: what is {i} times {i + 3}?" for i in range(24)] + [""]
    serial = router.predict(texts)
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda t: router.predict([t])[0], texts))
    np.testing.assert_allclose(np.stack(parallel), serial, rtol=0, atol=1e-6)
