"""The non-learned strategies, their ``Strategy`` classes, the registry and ``undecided``."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from router_models.inference.base import LoadOptions, undecided
from router_models.inference.learned_strategy import LearnedStrategy
from router_models.inference.registry import STRATEGIES, build_strategy
from router_models.inference.strategies import (
    CostFirstStrategy,
    NoCandidateError,
    WeightedShuffleStrategy,
    cost_first,
    weighted_shuffle,
)
from router_models.inference.types import Candidate, RouteQuery, RouterSpec

CANDS = (Candidate("a", 2.0, weight=1), Candidate("b", 0.5, weight=3), Candidate("c", 0.5, weight=0.0001))


def test_cost_first_picks_the_cheapest_first_in_order() -> None:
    decision = cost_first(RouteQuery("r", "q", CANDS))
    assert decision.model == "b" and decision.scores["a"] < decision.scores["b"]
    with pytest.raises(NoCandidateError):
        cost_first(RouteQuery("r", "q", ()))


def test_weighted_shuffle_follows_weights() -> None:
    rng = random.Random(7)
    counts = Counter(weighted_shuffle(RouteQuery("r", "q", CANDS[:2]), rng).model for _ in range(2000))
    assert 2.5 < counts["b"] / counts["a"] < 3.6


def test_weighted_shuffle_without_candidates_has_none_to_choose() -> None:
    with pytest.raises(NoCandidateError):
        weighted_shuffle(RouteQuery("r", "q", ()))


async def test_cost_first_strategy_isolates_each_query() -> None:
    strategy = CostFirstStrategy(RouterSpec("cheap", "cost-first"))
    good, empty = RouteQuery("cheap", "q", CANDS, lam=0.5), RouteQuery("cheap", "q", ())
    decisions = await strategy.route_batch([good, empty, good])
    assert [d.model for d in decisions] == ["b", "", "b"]
    assert [d.error for d in decisions] == [None, "NoCandidateError: no candidate fits this request", None]
    assert decisions[1].strategy == "cost-first" and decisions[1].lam is None
    assert strategy.describe() == {"type": "cost-first", "artifact": None}


async def test_weighted_shuffle_strategy_isolates_each_query() -> None:
    strategy = WeightedShuffleStrategy(RouterSpec("mix", "weighted-shuffle"), rng=random.Random(3))
    zero = (Candidate("z", 1.0, weight=0.0),)
    decisions = await strategy.route_batch([RouteQuery("mix", "q", CANDS[:2]), RouteQuery("mix", "q", zero)])
    assert decisions[0].model in {"a", "b"} and decisions[0].error is None
    assert decisions[1].model == "" and decisions[1].error is not None
    assert decisions[1].error.startswith("ValueError: ") and "\n" not in decisions[1].error


def test_registry_maps_each_configured_name_to_its_class() -> None:
    assert dict(STRATEGIES) == {"learned": LearnedStrategy, "cost-first": CostFirstStrategy,
                                "weighted-shuffle": WeightedShuffleStrategy}
    assert isinstance(build_strategy(RouterSpec("r", "cost-first"), LoadOptions()), CostFirstStrategy)


def test_unknown_strategy_fails_at_construction_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"router 'r': unknown strategy 'cheapest' \(known: cost-first, ") as info:
        build_strategy(RouterSpec("r", "cheapest"), LoadOptions())
    assert "\n" not in str(info.value)


def test_undecided_keeps_the_cause_on_one_line() -> None:
    query = RouteQuery("r", "q", CANDS, lam=0.3)
    d = undecided(query, "learned", RuntimeError("first line\n  second line"))
    assert (d.model, d.strategy, d.lam) == ("", "learned", 0.3)
    assert d.error == "RuntimeError: first line second line"
    assert undecided(query, "learned", KeyError(), lam=0.0).error == "KeyError" and d.fallback is False
