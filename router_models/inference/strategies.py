"""Non-learned routing strategies: cost-first and weighted shuffle.

Both work on candidates the ingress already narrowed (caller's allowlist, context
window, capabilities), so a strategy only ranks; it never widens the set. The
functions decide one query (``app`` uses ``weighted_choice`` to pick among a model's
deployments); the classes are their ``Strategy`` shells for ``RoutingService``. This
module must stay light: the ingress imports it, so no torch, numpy or artifact code.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, ClassVar

from router_models.inference.base import LoadOptions, route_each
from router_models.inference.types import Candidate, RouteDecision, RouteQuery, RouterSpec


class NoCandidateError(ValueError):
    """No candidate is left to choose from."""


def weighted_choice(weights: Sequence[float], rng: random.Random | None = None) -> int:
    """Index drawn with probability proportional to its weight."""
    if not weights:
        raise NoCandidateError("no candidate to choose from")
    return (rng or random).choices(range(len(weights)), weights=weights, k=1)[0]


def cost_first(query: RouteQuery) -> RouteDecision:
    """The cheapest candidate (ties: first in config order)."""
    if not query.candidates:
        raise NoCandidateError("no candidate fits this request")
    best = min(query.candidates, key=lambda c: c.price)
    return RouteDecision(
        model=best.name,
        strategy="cost-first",
        scores={c.name: -c.price for c in query.candidates},
        reason=f"cheapest of {len(query.candidates)} candidates that fit",
    )


def weighted_shuffle(query: RouteQuery, rng: random.Random | None = None) -> RouteDecision:
    """A candidate drawn in proportion to its configured weight."""
    cands: Sequence[Candidate] = query.candidates
    pick = cands[weighted_choice([c.weight for c in cands], rng)]
    total = sum(c.weight for c in cands)
    return RouteDecision(
        model=pick.name,
        strategy="weighted-shuffle",
        scores={c.name: c.weight / total for c in cands},
        reason="drawn in proportion to the candidates' weights",
    )


class CostFirstStrategy:
    """``cost_first`` for every query naming the router; nothing to load."""

    strategy: ClassVar[str] = "cost-first"

    def __init__(self, spec: RouterSpec, options: LoadOptions | None = None) -> None:
        self._spec = spec

    async def route_batch(self, queries: Sequence[RouteQuery]) -> list[RouteDecision]:
        return route_each(queries, self.strategy, cost_first)

    def describe(self) -> dict[str, Any]:
        return {"type": self.strategy, "artifact": None}


class WeightedShuffleStrategy:
    """``weighted_shuffle`` for every query naming the router; ``rng`` makes tests repeatable."""

    strategy: ClassVar[str] = "weighted-shuffle"

    def __init__(self, spec: RouterSpec, options: LoadOptions | None = None, rng: random.Random | None = None) -> None:
        self._spec, self._rng = spec, rng

    async def route_batch(self, queries: Sequence[RouteQuery]) -> list[RouteDecision]:
        return route_each(queries, self.strategy, lambda q: weighted_shuffle(q, self._rng))

    def describe(self) -> dict[str, Any]:
        return {"type": self.strategy, "artifact": None}
