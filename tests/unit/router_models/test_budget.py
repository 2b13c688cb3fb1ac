"""The deadline budget: a query the encoder cannot score in time is decided on the prior,
labelled degraded, with its own λ; driven with a fake clock, without Ray."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from router_models.inference import learned_strategy
from router_models.inference.budget import DEGRADED, PriorQuality, ScoringBudget
from router_models.inference.learned_strategy import LearnedStrategy
from router_models.inference.types import Candidate, RouteQuery, RouterSpec

CANDS = (Candidate("small", 0.1), Candidate("large", 0.9))
NOW = 1_000.0


class Predictor:
    """``large`` better by 0.3 for every text except those containing "easy" (0.2 better)."""

    models = ["small", "large"]
    default_lambda = 0.1
    router_type = "fake"
    manifest: dict[str, Any] = {"router_type": "fake", "files": {}}

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += texts
        return np.array([[0.7, 0.9] if "easy" in t else [0.5, 0.8] for t in texts], np.float32)


@pytest.fixture
def predictor(monkeypatch: pytest.MonkeyPatch) -> Predictor:
    fake = Predictor()
    monkeypatch.setattr(learned_strategy, "_load", lambda artifact, options: fake)
    return fake


def budget(per_query_s: float = 0.01) -> ScoringBudget:
    return ScoringBudget(reserve_s=0.02, initial_per_query_s=per_query_s, clock=lambda: NOW)


def test_late_queries_are_those_an_encoder_pass_would_miss() -> None:
    b = budget(per_query_s=0.01)
    # Two queries: the pass ends at NOW + 0.02, plus 0.02 reserve -> NOW + 0.04.
    assert b.late([NOW + 0.05, NOW + 0.03]) == {1}
    assert b.late([None, NOW - 1]) == {1}  # no deadline is never late; a passed one always is


def test_the_estimate_follows_observed_passes() -> None:
    b = ScoringBudget(initial_per_query_s=0.01, alpha=0.5, clock=lambda: NOW)
    b.observe(4, 0.2)  # 50 ms per query
    assert b.per_query_s == pytest.approx(0.03)
    b.observe(0, 1.0)  # an empty pass says nothing
    assert b.per_query_s == pytest.approx(0.03)


def test_prior_is_the_mean_of_predictions_and_flat_before_any() -> None:
    prior = PriorQuality(2)
    assert prior.row().tolist() == [0.0, 0.0]
    prior.add(np.array([[0.5, 0.8], [0.7, 1.0]]))
    assert prior.row() == pytest.approx([0.6, 0.9])


async def test_saturated_scorer_answers_late_queries_from_the_prior(predictor: Predictor) -> None:
    strategy = LearnedStrategy(RouterSpec("auto", "learned", "/art"), budget=budget())
    await strategy.route_batch([RouteQuery("auto", "easy one", CANDS, lam=0.0, deadline=NOW + 1)])
    on_time, late, late_cheap = await strategy.route_batch([
        RouteQuery("auto", "hard", CANDS, lam=0.0, deadline=NOW + 1),
        RouteQuery("auto", "late", CANDS, lam=0.0, deadline=NOW + 0.01),
        RouteQuery("auto", "late too", CANDS, lam=1.0, deadline=NOW),
    ])
    assert predictor.embedded == ["easy one", "hard"]  # the late ones never reach the encoder
    assert on_time.strategy == "learned:fake" and on_time.model == "large"
    assert late.strategy == DEGRADED and late.model == "large"
    # The prior: the mean of every row predicted so far, this batch's pass included.
    assert late.scores == pytest.approx({"small": 0.6, "large": 0.85})
    assert late_cheap.strategy == DEGRADED and late_cheap.model == "small"  # its own λ still applies
    assert "saturated" in late.reason and late.error is None


async def test_a_cached_prompt_is_answered_from_its_row_even_when_late(predictor: Predictor) -> None:
    strategy = LearnedStrategy(RouterSpec("auto", "learned", "/art"), budget=budget())
    await strategy.route_batch([RouteQuery("auto", "seen", CANDS, deadline=NOW + 1)])
    (d,) = await strategy.route_batch([RouteQuery("auto", "seen", CANDS, deadline=NOW)])
    assert d.strategy == "learned:fake"
    assert predictor.embedded == ["seen"]


async def test_before_any_prediction_the_prior_picks_the_cheapest(predictor: Predictor) -> None:
    strategy = LearnedStrategy(RouterSpec("auto", "learned", "/art"), budget=budget())
    (d,) = await strategy.route_batch([RouteQuery("auto", "q", CANDS, lam=0.0, deadline=NOW)])
    assert (d.model, d.strategy) == ("small", DEGRADED)
    assert predictor.embedded == []
