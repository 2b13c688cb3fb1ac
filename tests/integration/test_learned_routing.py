"""``auto`` through the graph with the shipped learned router: λ trades quality for cost; and
``auto-static``, a static-embedder router scored in the ingress itself (``scoring: ingress``)."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import httpx
import openai
import pytest
from ray import serve

from devtools.configs import ARTIFACT, MASTER_KEY, learned_gateway_config
from router_models.data.loader import DEFAULT_TEST, DEFAULT_TRAIN, load_prices
from router_models.static_embedding import static_config
from router_models.training.pipeline import TrainConfig, train
from tests.unit.router_models.conftest import write_slice

PRICES = load_prices()
LAMBDAS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 5.0)


@pytest.fixture(scope="module")
def static_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small static-embedder KNN on 400 training rows (~20 s: most of it distilling the table)."""
    root = tmp_path_factory.mktemp("static")
    data = write_slice(DEFAULT_TRAIN, root / "train.jsonl", 400, seed=5)
    train(TrainConfig(router_type="knn", data=data, out=root / "router", folds=1, cache_dir=None,
                      hparam={"n_neighbors": 10}, embedder=static_config()))
    return root / "router"


@pytest.fixture(scope="module")
def learned_url(deploy_gateway, upstream, static_artifact: Path) -> str:
    cfg = learned_gateway_config(upstream.url)
    auto = cfg["router_settings"]["routers"][0]
    cfg["router_settings"]["routers"].append(
        {**auto, "name": "auto-static", "artifact": str(static_artifact), "scoring": "ingress"})
    return deploy_gateway(cfg, name="learned", route_prefix="/learned")


@pytest.fixture(scope="module")
def client(learned_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=learned_url, api_key=MASTER_KEY, max_retries=0, timeout=60)


def _queries(n: int) -> list[str]:
    rows = [json.loads(line) for line in DEFAULT_TEST.read_text().splitlines()[:200]]
    return [r["query"] for r in rows[::200 // n]][:n]


def _route(client: openai.OpenAI, query: str, lam: float | None = None, model: str = "auto") -> dict[str, str]:
    headers = {"x-routeiq-lambda": str(lam)} if lam is not None else {}
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": query}], max_tokens=4, extra_headers=headers)
    return dict(raw.headers)


def test_cheaper_models_as_lambda_rises(client: openai.OpenAI) -> None:
    mean_price = []
    for lam in LAMBDAS:
        picks = [_route(client, q, lam) for q in _queries(8)]
        assert all(p["x-routeiq-strategy"].startswith("learned") for p in picks)
        assert {float(p["x-routeiq-lambda"]) for p in picks} == {lam}
        mean_price.append(sum(PRICES[p["x-routeiq-model"]] for p in picks) / len(picks))
    assert all(a >= b - 1e-9 for a, b in itertools.pairwise(mean_price)), mean_price
    assert mean_price[0] > mean_price[-1]
    assert mean_price[-1] == pytest.approx(min(PRICES.values()))  # a high λ: the cheapest model


def test_aliases_set_lambda(client: openai.OpenAI) -> None:
    query = _queries(1)[0]
    assert _route(client, query, model="auto:cost")["x-routeiq-lambda"] == "5"
    assert PRICES[_route(client, query, model="auto:cost")["x-routeiq-model"]] == min(PRICES.values())
    assert _route(client, query, model="auto:quality")["x-routeiq-lambda"] == "0"


def test_scorer_past_its_deadline_falls_back(client: openai.OpenAI) -> None:
    headers = _route(client, "hello", model="auto-hurried")
    assert headers["x-routeiq-strategy"] == "fallback"
    assert PRICES[headers["x-routeiq-model"]] == min(PRICES.values())


async def test_tampered_artifact_is_refused_and_the_loaded_router_keeps_serving(
    client: openai.OpenAI, tmp_path: Path
) -> None:
    bad = tmp_path / "tampered"
    shutil.copytree(ARTIFACT, bad)
    weights = bad / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    handle = serve.get_deployment_handle("RouterScoring", app_name="learned")
    await handle.reconfigure.remote({"artifacts": {"auto": str(bad)}})
    assert (await handle.describe.remote())["routers"]["auto"]["artifact"] == str(ARTIFACT)
    assert _route(client, _queries(1)[0])["x-routeiq-strategy"].startswith("learned")


def test_a_router_scored_in_the_ingress_routes_without_the_scorer(
    client: openai.OpenAI, learned_url: str, static_artifact: Path,
) -> None:
    picks = [_route(client, q, lam, model="auto-static") for lam in (0.0, 5.0) for q in _queries(4)]
    assert {p["x-routeiq-strategy"] for p in picks} == {"learned:knn"}
    assert {PRICES[p["x-routeiq-model"]] for p in picks[4:]} == {min(PRICES.values())}  # λ 5: the cheapest
    info = httpx.get(learned_url.removesuffix("/v1") + "/router/info",
                     headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=30).json()["routers"]
    assert info["auto-static"]["scoring"] == "ingress" and info["auto"]["scoring"] == "replica"
    assert info["auto-static"]["artifact"] == str(static_artifact)
    ingress, scorer = info["auto-static"]["replicas"], info["auto"]["replicas"]
    assert ingress and scorer and {r["replica"] for r in ingress}.isdisjoint(r["replica"] for r in scorer)
