"""Training on partial labels: decision-log feedback rows (one served model scored, with its
propensity) merged with a full-label base set, a model only the feedback knows learned."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from router_models.cli import app
from router_models.data import DEFAULT_CANDIDATES, load_routing_data
from router_models.data.partial import MIN_PROPENSITY, load_feedback, merge
from router_models.inference.learned import LearnedRouter
from router_models.training.pipeline import TrainConfig, train

NEW = "our-llama"
COPIED = "qwen2.5-7b-instruct"


@pytest.fixture(scope="module")
def candidates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped prices plus one for the user's own model."""
    path = tmp_path_factory.mktemp("cands") / "candidates.json"
    prices = json.loads(DEFAULT_CANDIDATES.read_text())
    prices[NEW] = {"input_price": 0.05, "output_price": 0.05}
    path.write_text(json.dumps(prices))
    return path


def feedback_file(base: Path, out: Path, n: int) -> Path:
    """``our-llama`` answered ``n`` logged queries as well as qwen did (one score per row)."""
    rows = [json.loads(line) for line in base.read_text().splitlines()[:n]]
    with out.open("w") as fh:
        for r in rows:
            fh.write(json.dumps({"query": r["query"], "scores": {NEW: r["scores"][COPIED]}, "propensity": 0.25})
                     + "\n")
    return out


def test_feedback_rows_load_with_inverse_propensity_weights(tmp_path: Path, candidates: Path) -> None:
    path = tmp_path / "fb.jsonl"
    path.write_text('{"query": "a", "scores": {"our-llama": 1}, "propensity": 0.5}\n\n'
                    '{"query": "b", "scores": {"gemma-2-9b-it": 0.0, "our-llama": 0.5}, "propensity": 0.001}\n'
                    '{"query": "c", "scores": {"gemma-2-9b-it": 1.0}, "propensity": null}\n')
    fb = load_feedback(path, candidates)
    assert fb.models == [NEW, "gemma-2-9b-it"]
    assert np.array_equal(np.isnan(fb.scores), [[False, True], [False, False], [True, False]])
    assert fb.weights is not None and list(fb.weights) == [2.0, 1 / MIN_PROPENSITY, 1.0]  # clipped, then 1


@pytest.mark.parametrize(("line", "says"), [
    ('{"query": "", "scores": {"our-llama": 1}}', "record 2: `query` must be a non-empty string"),
    ('{"query": "q", "scores": {}}', "record 2: `scores` must be an object with at least one"),
    ('{"query": "q", "scores": {"our-llama": 1.5}}', "record 2: score of 'our-llama' must be a number in [0, 1]"),
    ('{"query": "q", "scores": {"our-llama": 1}, "propensity": 0}', "record 2: `propensity` must be a number in"),
    ('[1, 2]', "record 2: not a JSON object"),
    ('{"query": "q", "scores"', "record 2: not JSON"),
    ('{"query": "q", "scores": {"no-price": 1}}', "no price for ['no-price']"),
])
def test_a_malformed_record_is_one_line_naming_file_and_record(tmp_path: Path, candidates: Path, line: str,
                                                               says: str) -> None:
    path = tmp_path / "fb.jsonl"
    path.write_text('{"query": "ok", "scores": {"our-llama": 1}}\n' + line + "\n")
    with pytest.raises(ValueError) as failed:
        load_feedback(path, candidates)
    assert says in str(failed.value) and "\n" not in str(failed.value)
    result = CliRunner().invoke(app, ["train", "--router", "knn", "--feedback", str(path), "--candidates",
                                      str(candidates), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output


def test_merge_widens_to_every_model_and_weighs_base_rows_one(data_dir: Path, tmp_path: Path,
                                                             candidates: Path) -> None:
    base = load_routing_data(data_dir / "train.jsonl")
    fb = load_feedback(feedback_file(data_dir / "train.jsonl", tmp_path / "fb.jsonl", 10), candidates)
    both = merge(base, fb)
    assert both.models == [*base.models, NEW] and len(both) == len(base) + 10
    assert np.isnan(both.scores[: len(base), -1]).all() and np.isnan(both.scores[len(base):, :-1]).all()
    assert both.weights is not None
    assert set(both.weights[: len(base)]) == {1.0} and set(both.weights[len(base):]) == {4.0}
    assert list(both.full_rows()) == [] and both.partial


def test_quality_loss_is_the_plain_mean_on_full_labels_and_ignores_unobserved_scores() -> None:
    import torch
    import torch.nn.functional as F

    from router_models.training.losses import quality_loss

    logits, y = torch.randn(6, 3), torch.rand(6, 3)
    assert torch.equal(quality_loss(logits, y), F.binary_cross_entropy_with_logits(logits, y))
    holes = y.clone()
    holes[:, 2] = float("nan")
    assert torch.allclose(quality_loss(logits, holes), F.binary_cross_entropy_with_logits(logits[:, :2], y[:, :2]))
    w = torch.tensor([1.0, 1, 1, 1, 1, 0])
    assert torch.allclose(quality_loss(logits, y, w), F.binary_cross_entropy_with_logits(logits[:5], y[:5]))


@pytest.mark.parametrize(("router_type", "hparam"), [("knn", {"n_neighbors": 3}),
                                                      ("mlp", {"n_seeds": 1, "epochs": 30})])
def test_a_model_only_feedback_scored_gets_its_own_predictions(
    router_type: str, hparam: dict, data_dir: Path, cache_dir: Path, tmp_path: Path, candidates: Path,
) -> None:
    fb = feedback_file(data_dir / "train.jsonl", tmp_path / "fb.jsonl", 400)
    out = tmp_path / router_type
    manifest = train(TrainConfig(router_type=router_type, data=data_dir / "train.jsonl", feedback=(fb,),
                                 candidates=candidates, out=out, folds=2, cache_dir=cache_dir, hparam=hparam))
    assert manifest["models"][-1] == NEW
    assert manifest["training_data"]["models_from_feedback"] == [NEW]
    assert manifest["training_data"]["feedback_rows"] == 400
    assert manifest["eval"]["cross_validation"]["q_best"] > 0  # evaluated on the base set's models
    rows = [json.loads(line) for line in fb.read_text().splitlines()]
    router = LearnedRouter.load(out)
    pred = router.predict([r["query"] for r in rows])[:, router.models.index(NEW)]
    truth = np.array([r["scores"][NEW] for r in rows])
    assert np.isfinite(pred).all() and pred.min() >= 0 and pred.max() <= 1
    assert pred[truth == 1].mean() > pred[truth == 0].mean() + 0.2  # it learned where our-llama does well


def test_mf_refuses_partial_labels_in_one_line(data_dir: Path, tmp_path: Path, candidates: Path) -> None:
    fb = feedback_file(data_dir / "train.jsonl", tmp_path / "fb.jsonl", 5)
    with pytest.raises(ValueError, match="router type 'mf' does not train on partial labels"):
        train(TrainConfig(router_type="mf", data=data_dir / "train.jsonl", feedback=(fb,), candidates=candidates,
                          out=tmp_path / "mf", folds=2, cache_dir=None))
