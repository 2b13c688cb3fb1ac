"""Non-learned routing strategies: cost-first and weighted shuffle.

Both work on candidates the ingress already narrowed (caller's allowlist, context
window, capabilities), so a strategy only ranks; it never widens the set.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from router_models.inference.types import Candidate, RouteDecision, RouteQuery


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
