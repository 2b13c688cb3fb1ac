from __future__ import annotations

import random
from collections import Counter

import pytest

from router_models.inference.strategies import NoCandidateError, cost_first, weighted_shuffle
from router_models.inference.types import Candidate, RouteQuery

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
