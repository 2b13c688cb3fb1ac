"""The static embedder (issue #21): its arithmetic, its artifact, and `auto` served on it."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
import uvicorn
from typer.testing import CliRunner

from app.config import parse_config
from app.main import create_app
from app.providers.pool import LocalProviderPool
from app.wiring import build_gateway
from devtools.configs import ARTIFACT, MASTER_KEY, learned_gateway_config
from devtools.servers import free_port, wait_port
from router_models import static_embedding
from router_models.artifacts import ArtifactError
from router_models.cli import app as cli
from router_models.embedding import EmbedderConfig, bundled_tokenizer, model_dir
from router_models.inference.learned import LearnedRouter
from router_models.inference.service import RouterSpec, RoutingService
from router_models.inference.types import Candidate, RouteQuery
from router_models.minilm_onnx import load_onnx_minilm
from router_models.static_embedding import StaticEmbedder, static_config

runner = CliRunner()


@pytest.fixture(scope="module")
def random_embedder() -> StaticEmbedder:
    """A static embedder over a random table: the arithmetic, without distilling 30k tokens."""
    size = static_embedding.vocabulary_size()
    rng = np.random.default_rng(0)
    return StaticEmbedder(static_config(16), rng.normal(size=(size, 384)), rng.uniform(0.5, 3.0, size))


def test_a_query_is_the_weighted_mean_of_its_tokens_and_the_unused_window(random_embedder: StaticEmbedder) -> None:
    e = random_embedder
    text = "Which river is the longest?"
    ids = [i for i in e._tokenizer.encode(text).ids[1:-1]]  # without [CLS] and [SEP]
    table, weights = e._table, e._weights
    unused = 16 - (len(ids) + 2)
    expect = (weights[ids] @ table[ids] + unused * table[0]) / (weights[ids].sum() + unused)
    got = e.embed([text])[0]
    np.testing.assert_allclose(got, expect / np.linalg.norm(expect), rtol=1e-5, atol=1e-6)


def test_embeddings_are_unit_deterministic_and_cut_at_the_window(random_embedder: StaticEmbedder) -> None:
    e = random_embedder
    long = " ".join(f"word{i}" for i in range(5000))
    x = e.embed(["a", "", long, "a"])
    assert x.shape == (4, 384) and x.dtype == np.float32 and np.all(np.isfinite(x))
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    assert np.array_equal(x[0], x[3])
    window = e._tokenizer.encode(long).ids[1:-1]  # the first 14 word pieces
    assert len(window) == 14
    prefix = e._tokenizer.decode(window)
    np.testing.assert_allclose(x[2], e.embed([prefix])[0], rtol=1e-5, atol=1e-6)
    assert e.embed([]).shape == (0, 384)


def test_tensors_round_trip_and_a_changed_table_is_refused(random_embedder: StaticEmbedder) -> None:
    tensors = random_embedder.tensors()
    assert tensors["static.table"].dtype == np.float16
    again = StaticEmbedder.from_tensors(random_embedder.config, tensors)
    assert again.config == random_embedder.config
    assert np.array_equal(again.embed(["same text"]), random_embedder.embed(["same text"]))
    changed = {**tensors, "static.weights": tensors["static.weights"] * 2}
    with pytest.raises(ValueError, match="digest"):
        StaticEmbedder.from_tensors(random_embedder.config, changed)
    with pytest.raises(ValueError, match="needs the tensors"):
        StaticEmbedder.from_tensors(random_embedder.config, {"static.table": tensors["static.table"]})


def test_a_distilled_row_is_the_encoder_output_of_its_token_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(static_embedding, "vocabulary_size", lambda: 1100)
    table = static_embedding.distill_table()
    assert table.shape == (1100, 384)
    encoder = load_onnx_minilm(model_dir(), quantize=False)
    ids = np.array([[101, 1037, 102]])  # [CLS] "a" [SEP]
    np.testing.assert_allclose(table[1037], encoder.encode(ids, np.ones_like(ids))[0, 1], rtol=1e-4, atol=1e-5)
    done: list[int] = []
    again = static_embedding.distill_table(done.append)  # once per process: a copy, progress at once
    assert np.array_equal(again, table) and done == [1100]
    again[1037] = 0.0
    assert np.array_equal(static_embedding.distill_table()[1037], table[1037])


def test_idf_weights_rare_tokens_up() -> None:
    w = static_embedding.idf_weights(["the cat", "the dog", "the bird"], static_embedding.vocabulary_size(), 128)
    tok = bundled_tokenizer(128)
    the, cat, unseen = (tok.token_to_id(t) for t in ("the", "cat", "river"))
    assert w[the] < w[cat] < w[unseen]


def test_minilm_manifests_do_not_name_the_kind() -> None:
    assert "kind" not in EmbedderConfig().to_dict()
    assert static_config().to_dict()["kind"] == "static"


@pytest.fixture(scope="module")
def static_router(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A static-embedder router trained by `routeiq train --embedder static` on the train slice."""
    out = tmp_path_factory.mktemp("static") / "router"
    result = runner.invoke(cli, ["train", "--embedder", "static", "--router", "knn", "--folds", "2",
                                 "--data", str(data_dir / "train.jsonl"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_train_writes_a_static_artifact_that_serves(static_router: Path) -> None:
    manifest = json.loads((static_router / "manifest.json").read_text())
    assert manifest["embedder"]["kind"] == "static" and manifest["embedder"]["quantize"] is False
    router = LearnedRouter.load(static_router)
    assert isinstance(router.embedder, StaticEmbedder)
    assert router.embedder_config == router.embedder.config
    pred = router.predict(["What is 2 + 2?", "Write a sonnet about the sea."])
    assert pred.shape == (2, len(router.models)) and np.all((pred >= 0) & (pred <= 1))
    from safetensors.numpy import load_file

    from router_models.training.knn import STATIC_DIMS

    weights = load_file(str(static_router / "weights.safetensors"))  # its KNN bank is projected
    assert weights["proj"].shape == (STATIC_DIMS, 384) and weights["keys"].shape[1] == STATIC_DIMS


def test_a_static_router_decides_on_the_event_loop_and_minilm_in_a_thread(
        static_router: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The static router's decision (~1 ms) is cheaper than a hop to a worker thread."""
    from router_models.inference.learned_strategy import LearnedStrategy

    async def no_thread(*_: object, **__: object) -> object:
        raise AssertionError("decided in a worker thread")

    static = LearnedStrategy(RouterSpec("auto", "learned", str(static_router)))
    minilm = LearnedStrategy(RouterSpec("auto", "learned", str(ARTIFACT)))
    query = RouteQuery("auto", "What is 2 + 2?", tuple(Candidate(m, 1.0) for m in static.describe()["models"]))
    monkeypatch.setattr(asyncio, "to_thread", no_thread)
    [decision] = asyncio.run(static.route_batch([query]))
    assert decision.error is None and decision.strategy.startswith("learned")
    with pytest.raises(AssertionError, match="worker thread"):
        asyncio.run(minilm.route_batch([query]))


def test_finetuned_cannot_train_on_a_static_embedder(tmp_path: Path, data_dir: Path) -> None:
    result = runner.invoke(cli, ["train", "--embedder", "static", "--router", "finetuned",
                                 "--data", str(data_dir / "train.jsonl"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: router type 'finetuned' tunes the MiniLM encoder; a static embedder has none: "
        "use one of ('ensemble', 'mlp', 'knn', 'mf')"]
    assert not (tmp_path / "r").exists()
    bad = runner.invoke(cli, ["train", "--embedder", "word2vec", "--out", str(tmp_path / "r")])
    assert bad.exit_code == 2 and "--embedder must be minilm or static" in bad.output


def test_an_unknown_kind_or_misplaced_tensors_are_refused(static_router: Path, tmp_path: Path) -> None:
    unknown = tmp_path / "unknown"
    shutil.copytree(static_router, unknown)
    manifest = json.loads((unknown / "manifest.json").read_text())
    manifest["embedder"]["kind"] = "word2vec"
    (unknown / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="embedder kind 'word2vec' is unknown"):
        LearnedRouter.load(unknown)
    relabelled = tmp_path / "relabelled"
    shutil.copytree(static_router, relabelled)
    del manifest["embedder"]["kind"]
    manifest["embedder"]["encoder_sha256"] = None
    (relabelled / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="static embedder tensors in an artifact of embedder kind 'minilm'"):
        LearnedRouter.load(relabelled)


@pytest.fixture(scope="module")
def gateway(upstream, static_router: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The gateway in-process, its `auto` router on the static artifact."""
    raw = learned_gateway_config(upstream.url, artifact=static_router)
    raw["general_settings"]["decisions"] = {"enabled": False}
    cfg = parse_config(raw)
    router = RoutingService([RouterSpec(r.name, r.strategy, r.artifact, r.lam) for r in cfg.router_settings.routers])
    server = uvicorn.Server(uvicorn.Config(create_app(build_gateway(cfg, LocalProviderPool(cfg), router)),
                                           port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port(server.config.port)
    yield f"http://127.0.0.1:{server.config.port}/v1"
    server.should_exit = True
    thread.join(timeout=5)


def test_auto_routes_on_the_static_embedder_through_the_sdk(gateway: str, static_router: Path) -> None:
    client = openai.OpenAI(base_url=gateway, api_key=MASTER_KEY, max_retries=0)
    models = set(json.loads((static_router / "manifest.json").read_text())["models"])
    served = []
    for lam in ("0", "5"):  # all quality, then price dominates: the router's scores meet the request's λ
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "Prove that the square root of 2 is irrational."}],
            extra_headers={"x-routeiq-lambda": lam})
        assert raw.http_response.status_code == 200
        assert raw.parse().model in models
        assert raw.headers["x-routeiq-strategy"] == "learned:knn", dict(raw.headers)
        served.append(raw.parse().model)
    assert served[0] != served[1]
