"""Routers scored in the ingress itself, the others through the router-scoring deployment.

Why: a decision's hop to the scorer replica (Serve's RPC on both sides, the batch queue, the
handle call) cost 0.7-5.6 ms of CPU per request on a 2-core machine, while a static-embedder
router decides in 0.4-0.8 ms (bench/RESULTS-auto.md): in the ingress, such a router served
0.76-0.79x a concrete model's requests per second at c=16, in the replica 0.64-0.80x. A
router configured with ``scoring: ingress`` is therefore decided by a ``RoutingService`` in
this process; the rest keep their hop, batching and independent scaling. The local service is the scorer's
own class (``deployments.router_sync.build_scoring``), so artifacts load, verify and follow
a registry exactly as in a scorer replica.
"""

from __future__ import annotations

from typing import Any, Protocol

from app.errors import ReplicaUnavailableError
from app.gateway.routing import RouterClient
from router_models.inference.types import RouteDecision, RouteQuery


class InProcessScorer(Protocol):
    """What the ingress needs of a ``RoutingService`` (and its registry sync)."""

    async def route(self, query: RouteQuery) -> RouteDecision: ...

    def describe(self) -> dict[str, Any]: ...


class SplitRouter:
    """``RouterClient``: the local routers in-process, every other one through ``remote``."""

    def __init__(self, local: InProcessScorer, local_names: frozenset[str], remote: RouterClient | None,
                 replica: str) -> None:
        self._local, self._names, self._remote, self._replica = local, local_names, remote, replica

    async def route(self, query: RouteQuery) -> RouteDecision:
        if query.router in self._names:
            return await self._local.route(query)
        if self._remote is None:  # the graph binds a scorer whenever a router scores in a replica
            raise ReplicaUnavailableError(f"router {query.router!r} has no router-scoring deployment")
        return await self._remote.route(query)

    async def info(self) -> dict[str, Any]:
        """The scorer replica's answer with this ingress's routers added (``scored_in``).

        A scorer that does not answer fails the whole call, as without local routers:
        ``/router/info`` then reports ``scorer_error``; the local routers keep routing.
        """
        answered: dict[str, Any] = (await self._remote.info() if self._remote is not None
                                    else {"replica": self._replica})
        local = {name: {**detail, "scored_in": "ingress", "replica": self._replica}
                 for name, detail in self._local.describe().items()}
        return {**answered, "routers": {**(answered.get("routers") or {}), **local}}
