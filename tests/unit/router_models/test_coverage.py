"""Cold start: which candidates a learned router scores, a ``router_profile`` standing in
for a model the artifact does not know, and the one warning per loaded artifact."""

from __future__ import annotations

import logging

import pytest

from router_models.inference import learned_strategy
from router_models.inference.coverage import coverage
from router_models.inference.decide import decide
from router_models.inference.service import RouterSpec, RoutingService
from router_models.inference.types import Candidate, RouteQuery
from tests.unit.router_models.test_service import FakePredictor

KNOWN = {"small", "large"}


def test_candidates_split_by_name_profile_and_unknown() -> None:
    found = coverage([("small", None), ("mine", "large"), ("theirs", None), ("typo", "larg")], KNOWN)
    assert found.scored == ("small",)
    assert found.via_profile == {"mine": "large"}
    assert found.unknown == ("theirs", "typo")
    assert found.bad_profile == {"typo": "larg"}
    assert not found.complete


def test_summary_names_the_unknown_and_says_when_every_request_falls_back() -> None:
    some = coverage([("small", None), ("theirs", None)], KNOWN).summary("auto")
    assert some is not None and "theirs" in some and "router_profile" in some and "every request" not in some
    none = coverage([("a", None), ("b", "nope")], KNOWN).summary("auto")
    assert none is not None and "every request falls back" in none and "b -> nope" in none
    assert coverage([("small", None), ("mine", "large")], KNOWN).summary("auto") is None


def test_a_profiled_candidate_is_scored_as_its_profile_and_an_own_score_wins() -> None:
    quality = {"small": 0.5, "large": 0.8}
    cands = (Candidate("small", 0.1), Candidate("mine", 0.2, profile="large"))
    d = decide(quality, cands, lam=0.0)
    assert d.model == "mine" and d.utilities == {"small": 0.5, "mine": 0.8} and d.skipped == ()
    # once the artifact knows the model itself, the profile is not consulted
    assert decide({**quality, "mine": 0.1}, cands, lam=0.0).model == "small"
    # a profile the artifact does not know leaves the candidate skipped, never guessed
    d = decide(quality, (Candidate("small", 0.1), Candidate("x", 0.0, profile="nope")), lam=0.0)
    assert d.model == "small" and d.skipped == ("x",)


@pytest.fixture
def predictor(monkeypatch: pytest.MonkeyPatch) -> FakePredictor:
    fake = FakePredictor()
    monkeypatch.setattr(learned_strategy, "_load", lambda artifact, options: fake)
    return fake


async def test_a_loaded_router_warns_once_and_describes_its_coverage(
    predictor: FakePredictor, caplog: pytest.LogCaptureFixture,
) -> None:
    spec = RouterSpec("auto", "learned", "/artifacts/fake", candidates=(("small", None), ("llama-own", None),
                                                                         ("mine", "large")))
    with caplog.at_level(logging.WARNING, logger="routeiq.router"):
        service = RoutingService([spec])
        for _ in range(3):
            d = await service.route(RouteQuery("auto", "q", (Candidate("mine", 0.2, profile="large"),), lam=0.0))
            assert d.model == "mine" and not d.error
    warnings = [r.getMessage() for r in caplog.records if r.name == "routeiq.router"]
    assert len(warnings) == 1 and "llama-own" in warnings[0]
    described = service.describe()["auto"]["coverage"]
    assert described == {"scored": ["small"], "via_profile": {"mine": "large"}, "unknown": ["llama-own"],
                         "bad_profile": {}}


async def test_a_router_that_scores_every_candidate_stays_quiet(
    predictor: FakePredictor, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="routeiq.router"):
        RoutingService([RouterSpec("auto", "learned", "/a", candidates=(("small", None), ("large", None)))])
    assert not [r for r in caplog.records if r.name == "routeiq.router"]
