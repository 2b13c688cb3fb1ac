"""The router-scoring logic: one ``Strategy`` per configured router, behind one object.

The router-scoring deployment wraps one ``RoutingService``. Every router is built once,
at construction (a learned one loads its artifact then, never per request), from the
registry, so nothing here branches on strategy names. ``route_batch`` groups a batch by
router so a learned router embeds all its queries in one call (``@serve.batch``).

Isolation: a batch gathers the queries of different tenants, so ``route_batch`` always
answers one decision per query, in order, and a query that cannot be decided (unknown
router, a strategy that raised) gets a ``RouteDecision`` with ``error`` set instead of
failing the batch; the ingress falls back for that query alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from router_models.inference.base import LoadOptions, ReloadableStrategy, Strategy, undecided
from router_models.inference.registry import build_strategy
from router_models.inference.types import RouteDecision, RouteQuery, RouterSpec

__all__ = ["RouterSpec", "RoutingService", "UnknownRouterError"]


class UnknownRouterError(LookupError):
    """A query names a router this scorer was not configured with."""


class RoutingService:
    """Routes ``RouteQuery``s with the strategy of the router they name."""

    def __init__(self, specs: Sequence[RouterSpec], *, signing_key: bytes | None = None, allow_pickle: bool = False):
        options = LoadOptions(signing_key=signing_key, allow_pickle=allow_pickle)
        self._specs = {s.name: s for s in specs}
        self._routers: dict[str, Strategy] = {s.name: build_strategy(s, options) for s in specs}

    def reload(self, name: str, artifact: str) -> None:
        """Swap router ``name`` to another artifact, only once it loaded and verified.

        A tampered, unsigned-when-required or incompatible artifact raises
        ``ArtifactError`` and the router already loaded keeps serving.
        """
        router = self._routers.get(name)
        if not isinstance(router, ReloadableStrategy):
            raise ValueError(f"router {name!r} is not a learned router")
        router.reload(artifact)

    def describe(self) -> dict[str, Any]:
        """What is loaded (for readiness and logs): router → type and artifact."""
        return {name: router.describe() for name, router in self._routers.items()}

    async def route_batch(self, queries: Sequence[RouteQuery]) -> list[RouteDecision]:
        """One decision per query, in order; each router decides its queries in one call."""
        started = time.perf_counter()
        out: list[RouteDecision | None] = [None] * len(queries)
        by_router: dict[str, list[int]] = {}
        for i, q in enumerate(queries):
            if q.router in self._routers:
                by_router.setdefault(q.router, []).append(i)
            else:
                out[i] = undecided(q, "unknown", UnknownRouterError(f"no router named {q.router!r}"))
        # One router after another, not gathered: a learned router's thread already uses
        # the replica's CPU share, and two embedding passes at once would only contend.
        for name, idx in by_router.items():
            for i, d in zip(idx, await self._route_one_router(name, [queries[i] for i in idx]), strict=True):
                out[i] = d
        elapsed = (time.perf_counter() - started) * 1000
        return [_stamp(d, q, elapsed) for d, q in zip(out, queries, strict=True)]

    async def route(self, query: RouteQuery) -> RouteDecision:
        return (await self.route_batch([query]))[0]

    async def _route_one_router(self, name: str, queries: list[RouteQuery]) -> list[RouteDecision]:
        """The router's decisions, or an ``undecided`` per query if it broke its contract."""
        strategy = self._specs[name].strategy
        try:
            decisions = await self._routers[name].route_batch(queries)
        except Exception as err:  # noqa: BLE001 - a strategy bug fails its own queries only
            return [undecided(q, strategy, err) for q in queries]
        if len(decisions) != len(queries):
            err = RuntimeError(f"router {name!r} answered {len(decisions)} decisions for {len(queries)} queries")
            return [undecided(q, strategy, err) for q in queries]
        return decisions


def _stamp(d: RouteDecision | None, q: RouteQuery, elapsed_ms: float) -> RouteDecision:
    """The batch's latency on every decision, and the query's λ where the strategy set none."""
    assert d is not None, "every query is decided or undecided above"
    return replace(d, lam=d.lam if d.lam is not None else q.lam, latency_ms=elapsed_ms)
