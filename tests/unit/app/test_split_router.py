"""``SplitRouter``: `scoring: ingress` routers decided in-process, the others through the scorer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.errors import ReplicaUnavailableError
from app.gateway.split_router import SplitRouter
from router_models.inference.service import RoutingService
from router_models.inference.types import Candidate, RouteDecision, RouteQuery, RouterSpec

CANDIDATES = (Candidate("cheap", 0.1), Candidate("pricey", 2.0))


class Remote:
    """The scorer deployment's client, recording what reached it."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def route(self, query: RouteQuery) -> RouteDecision:
        self.asked.append(query.router)
        return RouteDecision(model="pricey", strategy="remote", lam=query.lam)

    async def info(self) -> dict[str, Any]:
        return {"replica": "scorer-1", "routers": {"far": {"type": "learned"}, "near": {"type": "stale"}}}


def _query(router: str) -> RouteQuery:
    return RouteQuery(router, "hello", CANDIDATES, None, "r1")


def _split(remote: Remote | None) -> SplitRouter:
    local = RoutingService([RouterSpec("near", "cost-first")])
    return SplitRouter(local, frozenset({"near"}), remote, "ingress-1")


def test_local_routers_never_reach_the_scorer_and_the_others_do() -> None:
    remote = Remote()
    split = _split(remote)
    near = asyncio.run(split.route(_query("near")))
    far = asyncio.run(split.route(_query("far")))
    assert (near.model, near.strategy) == ("cheap", "cost-first")
    assert far.strategy == "remote" and remote.asked == ["far"]


def test_without_a_scorer_only_the_local_routers_route() -> None:
    split = _split(None)
    assert asyncio.run(split.route(_query("near"))).model == "cheap"
    with pytest.raises(ReplicaUnavailableError, match="'far' has no router-scoring deployment"):
        asyncio.run(split.route(_query("far")))


def test_info_adds_the_local_routers_to_the_scorers_answer() -> None:
    info = asyncio.run(_split(Remote()).info())
    assert info["replica"] == "scorer-1"
    assert info["routers"]["far"] == {"type": "learned"}
    assert info["routers"]["near"]["scored_in"] == "ingress" and info["routers"]["near"]["replica"] == "ingress-1"
    alone = asyncio.run(_split(None).info())
    assert alone["replica"] == "ingress-1" and set(alone["routers"]) == {"near"}
