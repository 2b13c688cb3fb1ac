"""The ``Strategy`` protocol: what one configured router is to ``RoutingService``.

One class per strategy name (``registry.STRATEGIES``), one instance per ``RouterSpec``,
so the service never branches on strategy strings. The contract every implementation
keeps: ``route_batch`` returns exactly one decision per query, in order, and a query it
cannot decide gets an ``undecided`` decision instead of an exception, because
``@serve.batch`` gathers the queries of different tenants and one bad query must not
fail the others. ``route_each`` gives the non-learned strategies that for free.

Nothing heavy here: ``app`` imports ``strategies`` (which imports this module), and the
ingress must not load torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from router_models.inference.types import RouteDecision, RouteQuery, RouterSpec


@dataclass(frozen=True)
class LoadOptions:
    """How artifacts are verified: the scorer's settings, shared by every router it holds."""

    signing_key: bytes | None = None
    allow_pickle: bool = False
    cache_entries: int = 4096
    """Bound of each learned router's prediction cache (``prediction_cache``); 0 disables it."""
    deadline_reserve_s: float = 0.025
    """Time kept for the answer's hop back to the ingress when judging a deadline (``budget``)."""


class Strategy(Protocol):
    """One configured router: decides batches of queries that name it."""

    async def route_batch(self, queries: Sequence[RouteQuery]) -> list[RouteDecision]:
        """One decision per query, in order; an undecidable query gets ``undecided``."""
        ...

    def describe(self) -> dict[str, Any]:
        """What is loaded, for readiness and logs (JSON-safe)."""
        ...


@runtime_checkable
class ReloadableStrategy(Strategy, Protocol):
    """A strategy backed by an artifact that can be swapped without a restart."""

    def reload(self, artifact: str) -> None:
        """Serve ``artifact`` from now on, only once it loaded and verified (else raise)."""
        ...


StrategyClass = Callable[[RouterSpec, LoadOptions], Strategy]
"""What the registry maps a name to: a class built from its spec and the load options."""


def one_line(err: BaseException) -> str:
    """``Type: message`` on one line (decisions are logged and stored one per row)."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def undecided(query: RouteQuery, strategy: str, err: BaseException, lam: float | None = None) -> RouteDecision:
    """The decision for a query the router could not decide: no model, the cause in ``error``."""
    return RouteDecision(model="", strategy=strategy, reason="router could not decide", error=one_line(err),
                         lam=query.lam if lam is None else lam)


def route_each(
    queries: Sequence[RouteQuery], strategy: str, route_one: Callable[[RouteQuery], RouteDecision]
) -> list[RouteDecision]:
    """``route_one`` per query, turning each query's failure into its own ``undecided``."""
    out = []
    for q in queries:
        try:
            out.append(route_one(q))
        except Exception as err:  # noqa: BLE001 - any failure is this query's alone
            out.append(undecided(q, strategy, err))
    return out
