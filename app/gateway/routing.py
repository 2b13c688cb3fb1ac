"""Asking the router-scoring deployment, within the router's deadline, and falling back.

A routed request (``auto``, an alias) becomes a ``RouteQuery`` over the candidates that
fit it; the answer is a ``RouteDecision``. When the scorer fails, misses its deadline
(``timeout_ms``), or cannot decide this query (``RouteDecision.error``), the router's
``fallback_model`` (else the cheapest candidate) answers, and the decision says
``strategy: fallback`` so headers, metrics and the decision log show it; a metric counts
fallbacks by reason (``deadline``, ``unavailable``, ``undecided``, ``error``). While the
scorer's replicas are gone, a breaker skips asking (no request waits out the deadline
for a dead scorer) and readiness says ``degraded`` with ``router-scoring`` down.
Must not: raise for a scorer failure (routing degrades, requests do not fail).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.context import Context

from app.breaker import Breaker
from app.errors import ReplicaUnavailableError
from app.gateway.catalog import RouterTarget
from app.gateway.metrics import Metrics
from app.tracing import headers_for, tracer
from router_models.inference.types import Candidate, RouteDecision, RouteQuery

log = logging.getLogger("routeiq.gateway")


class UndecidedError(Exception):
    """The scorer answered, but could not decide this query (``RouteDecision.error``)."""


class RouterClient(Protocol):
    """The router-scoring deployment, as the ingress sees it."""

    async def route(self, query: RouteQuery) -> RouteDecision: ...

    async def info(self) -> dict[str, Any]:
        """What the replica that answers has loaded: ``{"replica", "routers": {name: ...}}``."""
        ...


class Routing:
    """Routes queries through a ``RouterClient`` (or falls back without one)."""

    def __init__(self, client: RouterClient | None, metrics: Metrics) -> None:
        self._client = client
        self._metrics = metrics
        self.breaker = Breaker("router-scoring", open_s=1.0, max_open_s=5.0)

    def report(self) -> dict[str, Any]:
        """Readiness detail of the scorer (``down`` while its replicas are gone)."""
        return self.breaker.report()

    async def decide(self, target: RouterTarget, text: str, candidates: tuple[Candidate, ...],
                     lam: float | None, request_id: str, otel: Context | None) -> RouteDecision:
        with tracer().start_as_current_span("routeiq.route", context=otel) as span:
            # The deadline travels as wall-clock time: the scorer may be another process or node
            # (clocks in sync to well under the reserve it keeps, ``LoadOptions.deadline_reserve_s``).
            query = RouteQuery(target.router.name, text, candidates, lam, request_id,
                               trace=headers_for(trace.set_span_in_context(span)),
                               deadline=time.time() + target.router.timeout_ms / 1000)
            started = time.perf_counter()
            try:
                decision = await self._ask(target, query)
            except Exception as err:  # noqa: BLE001  (any router failure falls back, by design)
                decision = _fallback(target, query, err, time.perf_counter() - started)
                self._metrics.router_fallback(router=target.router.name, reason=_reason(err))
            elapsed = time.perf_counter() - started
            span.set_attributes(_route_attributes(decision, query, elapsed))
        self._metrics.routed(router=target.router.name, strategy=decision.strategy, model=decision.model,
                             seconds=elapsed)
        return decision

    async def _ask(self, target: RouterTarget, query: RouteQuery) -> RouteDecision:
        if self._client is None:
            raise ReplicaUnavailableError("no router-scoring deployment")
        if not self.breaker.allow():
            raise ReplicaUnavailableError("router-scoring unavailable (retrying in the background)")
        try:
            async with asyncio.timeout(target.router.timeout_ms / 1000):
                decision = await self._client.route(query)
        except ReplicaUnavailableError as err:
            self.breaker.failure(err)
            raise
        except BaseException:
            self.breaker.release()  # a deadline or another failure says nothing about the replicas
            raise
        self.breaker.success()
        if decision.error:
            raise UndecidedError(decision.error)
        return decision


def _reason(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return "deadline"
    if isinstance(err, ReplicaUnavailableError):
        return "unavailable"
    return "undecided" if isinstance(err, UndecidedError) else "error"


def _fallback(target: RouterTarget, query: RouteQuery, err: BaseException, elapsed: float) -> RouteDecision:
    names = {c.name for c in query.candidates}
    configured = target.router.fallback_model
    model = configured if configured in names else min(query.candidates, key=lambda c: c.price).name
    if isinstance(err, TimeoutError):
        why = "timed out"
    elif isinstance(err, UndecidedError):
        why = f"could not decide ({err})"
    else:
        why = f"failed ({type(err).__name__}: {err})"
    log.warning("router %s %s; falling back to %s", target.router.name, why, model,
                extra={"request_id": query.request_id})
    return RouteDecision(model=model, strategy="fallback", reason=f"router {why}", lam=query.lam,
                         latency_ms=elapsed * 1000, fallback=True)


def _route_attributes(d: RouteDecision, q: RouteQuery, seconds: float) -> dict[str, Any]:
    """The ``router.*`` attributes of the ``routeiq.route`` span."""
    attrs: dict[str, Any] = {
        "router.name": q.router,
        "router.strategy": d.strategy,
        "router.model": d.model,
        "router.candidates": [c.name for c in q.candidates],
        "router.latency_ms": seconds * 1000,
        "router.fallback": d.fallback,
        "routeiq.request_id": q.request_id,
    }
    if d.model in d.scores:
        attrs["router.score"] = d.scores[d.model]
    if d.lam is not None:
        attrs["router.lambda"] = d.lam
    return attrs
