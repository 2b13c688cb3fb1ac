"""Strategy names → classes, as in RouteLLM's ``ROUTER_CLS``: the only place names are read.

``app.config`` validates a router's ``strategy`` against the same three names; a spec
built in code with another name fails here, at the scorer's construction, not per request.
"""

from __future__ import annotations

from router_models.inference.base import LoadOptions, Strategy, StrategyClass
from router_models.inference.learned_strategy import LearnedStrategy
from router_models.inference.strategies import CostFirstStrategy, WeightedShuffleStrategy
from router_models.inference.types import RouterSpec

STRATEGIES: dict[str, StrategyClass] = {
    LearnedStrategy.strategy: LearnedStrategy,
    CostFirstStrategy.strategy: CostFirstStrategy,
    WeightedShuffleStrategy.strategy: WeightedShuffleStrategy,
}


def build_strategy(spec: RouterSpec, options: LoadOptions) -> Strategy:
    """The strategy instance for ``spec`` (a learned one loads and warms its artifact here)."""
    cls = STRATEGIES.get(spec.strategy)
    if cls is None:
        known = ", ".join(sorted(STRATEGIES))
        raise ValueError(f"router {spec.name!r}: unknown strategy {spec.strategy!r} (known: {known})")
    return cls(spec, options)
