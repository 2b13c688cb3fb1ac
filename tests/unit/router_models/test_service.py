"""RoutingService: strategies from the registry, and one bad query never fails its batch.

Most tests swap the artifact loader for ``FakePredictor`` (no torch, instant); the last
one routes the mixed batch through the shipped artifact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from devtools.configs import ARTIFACT
from router_models.inference import learned_strategy, registry
from router_models.inference.base import LoadOptions
from router_models.inference.service import RouterSpec, RoutingService
from router_models.inference.types import Candidate, RouteDecision, RouteQuery

CANDS = (Candidate("small", 0.1), Candidate("large", 0.9))
SPECS = [RouterSpec("auto", "learned", "/artifacts/fake"), RouterSpec("cheap", "cost-first")]


class FakePredictor:
    """The part of ``LearnedRouter`` ``LearnedStrategy`` reads: ``large`` is better by 0.3."""

    models = ["small", "large"]
    default_lambda = 0.1
    router_type = "fake"
    manifest: dict[str, Any] = {"router_type": "fake"}

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.calls = fail, 0

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.fail:
            raise RuntimeError("embedder exploded")
        return np.tile(np.array([0.5, 0.8], np.float32), (len(texts), 1))


@pytest.fixture
def predictor(monkeypatch: pytest.MonkeyPatch) -> FakePredictor:
    fake = FakePredictor()
    monkeypatch.setattr(learned_strategy, "_load", lambda artifact, options: fake)
    return fake


async def test_bad_queries_get_errors_and_the_rest_their_decisions(predictor: FakePredictor) -> None:
    service = RoutingService(SPECS)
    queries = [
        RouteQuery("auto", "good", CANDS, lam=0.0),
        RouteQuery("auto", "nan", CANDS, lam=math.nan),
        RouteQuery("nowhere", "unknown router", CANDS),
        RouteQuery("auto", "no candidates", ()),
        RouteQuery("cheap", "good", CANDS),
        RouteQuery("auto", "unscored", (Candidate("other", 0.1),), lam=0.0),
        RouteQuery("auto", "default λ", CANDS),
    ]
    decisions = await service.route_batch(queries)
    assert [d.model for d in decisions] == ["large", "", "", "", "small", "", "large"]
    assert [d.error is None for d in decisions] == [True, False, False, False, True, False, True]
    assert decisions[1].error is not None and decisions[1].error.startswith("ValueError: lam must be")
    assert decisions[2].error == "UnknownRouterError: no router named 'nowhere'"
    assert decisions[3].error is not None and decisions[3].error.startswith("NoScoredCandidateError")
    assert [d.strategy for d in decisions] == ["learned:fake", "learned", "unknown", "learned",
                                               "cost-first", "learned", "learned:fake"]
    assert decisions[6].lam == pytest.approx(0.1)  # the artifact's default λ
    assert predictor.calls == 1  # the router's queries, good and bad, in one embedding pass
    assert len({d.latency_ms for d in decisions}) == 1


async def test_a_failed_predict_fails_only_that_routers_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(learned_strategy, "_load", lambda artifact, options: FakePredictor(fail=True))
    service = RoutingService([*SPECS, RouterSpec("tuned", "learned", "/artifacts/other", lam=0.2)])
    decisions = await service.route_batch(
        [RouteQuery("auto", "a", CANDS, lam=0.5), RouteQuery("cheap", "b", CANDS), RouteQuery("tuned", "c", CANDS)]
    )
    assert [d.error for d in decisions] == ["RuntimeError: embedder exploded", None,
                                            "RuntimeError: embedder exploded"]
    assert decisions[1].model == "small"
    assert (decisions[0].lam, decisions[2].lam) == (0.5, 0.2)  # the λ it would have used


class Broken:
    """A strategy that breaks the contract: raises, or answers the wrong number of decisions."""

    def __init__(self, spec: RouterSpec, options: LoadOptions) -> None:
        self.raises = spec.name == "raises"

    async def route_batch(self, queries: Sequence[RouteQuery]) -> list[RouteDecision]:
        if self.raises:
            raise KeyError("bug")
        return []

    def describe(self) -> dict[str, Any]:
        return {"type": "broken", "artifact": None}


async def test_a_strategy_that_breaks_its_contract_fails_only_its_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.STRATEGIES, "broken", Broken)
    service = RoutingService([RouterSpec("raises", "broken"), RouterSpec("short", "broken"),
                              RouterSpec("cheap", "cost-first")])
    decisions = await service.route_batch(
        [RouteQuery("raises", "q", CANDS), RouteQuery("cheap", "q", CANDS), RouteQuery("short", "q", CANDS)]
    )
    assert [d.model for d in decisions] == ["", "small", ""]
    assert decisions[0].error == "KeyError: 'bug'" and decisions[0].strategy == "broken"
    assert decisions[2].error == "RuntimeError: router 'short' answered 0 decisions for 1 queries"


def test_construction_refuses_unknown_strategies_and_learned_without_artifact() -> None:
    with pytest.raises(ValueError, match=r"^router 'x': unknown strategy 'random' \(known: "):
        RoutingService([RouterSpec("x", "random")])
    with pytest.raises(ValueError, match="needs an artifact"):
        RoutingService([RouterSpec("auto", "learned")])


async def test_reload_and_describe(predictor: FakePredictor) -> None:
    service = RoutingService(SPECS)
    assert service.describe() == {"auto": {"type": "fake", "artifact": "/artifacts/fake", "models": ["small", "large"],
                                           "default_lambda": 0.1, "coverage": None},
                                  "cheap": {"type": "cost-first", "artifact": None}}
    service.reload("auto", "/artifacts/next")
    assert service.describe()["auto"]["artifact"] == "/artifacts/next"
    for name in ("cheap", "nowhere"):
        with pytest.raises(ValueError, match="is not a learned router"):
            service.reload(name, "/artifacts/next")
    assert (await service.route(RouteQuery("auto", "q", CANDS, lam=0.0))).model == "large"


async def test_shipped_artifact_mixed_batch() -> None:
    service = RoutingService([RouterSpec("auto", "learned", str(ARTIFACT))])
    cands = (Candidate("gemma-2-9b-it", 0.1), Candidate("llama-3.1-nemotron-51b-instruct", 0.9))
    good, nan = RouteQuery("auto", "What is 17 * 23?", cands, lam=0.0), RouteQuery("auto", "x", cands, lam=math.nan)
    decisions = await service.route_batch([good, nan, RouteQuery("gone", "x", cands)])
    assert len(decisions) == 3
    assert decisions[0].error is None and decisions[0].model in {c.name for c in cands}
    assert decisions[0].strategy.startswith("learned:")
    assert decisions[1].error is not None and decisions[2].error is not None
    assert decisions[1].model == decisions[2].model == ""
