"""The request path of the ingress: resolve the model, route, call the provider.

``Gateway`` knows nothing of Ray: it talks to the router-scoring and provider-call
deployments through two small protocols (``RouterClient``, ``ProviderPool``), which
``deployments.ingress`` implements over DeploymentHandles and tests implement
in-process. A request naming a concrete model never reaches the router.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry.context import Context

from app.admission import Admission
from app.auth import AccessPolicy, MasterKeyPolicy, Principal
from app.catalog import Deployment, ModelCatalog, RouterTarget, estimate_tokens, fitting, query_text
from app.config import GatewayConfig
from app.cooldowns import Cooldowns, LocalCooldowns
from app.decisions import DecisionLog, NoDecisionLog
from app.errors import (
    InvalidRequestError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    RouteIQError,
    UpstreamError,
    UpstreamTimeoutError,
)
from app.metrics import Metrics, NoMetrics
from app.providers.base import Endpoint, ProviderCall, ProviderResult, StreamItem, Usage
from app.tracing import headers_for, tracer
from router_models.inference.strategies import weighted_choice
from router_models.inference.types import RouteDecision, RouteQuery

log = logging.getLogger("routeiq.gateway")
FALLBACK_ERRORS = (RateLimitError, UpstreamError, UpstreamTimeoutError, OverloadedError)
"""Failures another deployment may not have: try the next one in the chain."""


class RouterClient(Protocol):
    """The router-scoring deployment, as the ingress sees it."""

    async def route(self, query: RouteQuery) -> RouteDecision: ...


class ProviderPool(Protocol):
    """The provider-call deployments, one per provider group."""

    async def complete(self, group: str, call: ProviderCall) -> ProviderResult: ...

    def stream(self, group: str, call: ProviderCall) -> AsyncIterator[StreamItem]: ...


@dataclass
class RequestContext:
    """Per-request facts the handlers collect before calling the gateway."""

    request_id: str
    principal: Principal
    trace_headers: dict[str, str] = field(default_factory=dict)
    lam: float | None = None
    """λ from the ``x-routeiq-lambda`` header; the body's ``routeiq.lambda`` wins."""
    otel: Context | None = None
    """The request span's trace context (parent of the routing span)."""
    plan: Plan | None = None
    """Set once planned, so a request that then fails still has its routing decision logged."""


@dataclass
class Plan:
    """Where a request goes: the deployment, and the routing decision if any."""

    deployment: Deployment
    decision: RouteDecision | None = None
    fallback_from: str | None = None
    """The model that failed when a fallback answered."""
    query: str = ""
    """The text the router scored (routed requests only)."""

    def headers(self) -> dict[str, str]:
        h = {"x-routeiq-model": self.deployment.entry.model_name}
        if self.fallback_from:
            h["x-routeiq-fallback-from"] = self.fallback_from
        if self.decision is not None:
            h["x-routeiq-strategy"] = self.decision.strategy
            if self.decision.lam is not None:
                h["x-routeiq-lambda"] = f"{self.decision.lam:g}"
        return h

    def span_attributes(self) -> dict[str, str | float | bool]:
        entry = self.deployment.entry
        attrs: dict[str, str | float | bool] = {"routeiq.model": entry.model_name,
                                                "gen_ai.system": entry.litellm_params.model.split("/")[0]}
        if self.fallback_from:
            attrs["routeiq.fallback_from"] = self.fallback_from
        return attrs


class Gateway:
    """Resolves, routes and calls; one per ingress replica."""

    def __init__(
        self,
        cfg: GatewayConfig,
        providers: ProviderPool,
        router: RouterClient | None,
        policy: AccessPolicy | None = None,
        cooldowns: Cooldowns | None = None,
        metrics: Metrics | None = None,
        decisions: DecisionLog | None = None,
    ) -> None:
        self.cfg = cfg
        self.catalog = ModelCatalog(cfg)
        self.policy: AccessPolicy = policy or MasterKeyPolicy(cfg.master_key)
        self.admission = Admission(cfg.general_settings.max_inflight_requests)
        self.metrics: Metrics = metrics or NoMetrics()
        self.decisions: DecisionLog = decisions or NoDecisionLog()
        rs = cfg.router_settings
        self.cooldowns: Cooldowns = cooldowns or LocalCooldowns(
            rs.allowed_fails, rs.allowed_fails_window_s, rs.cooldown_time_s)
        self._providers = providers
        self._router = router
        self._timeout = cfg.general_settings.request_timeout_s

    async def plan(self, body: dict[str, Any], ctx: RequestContext) -> Plan:
        """Pick the deployment for this request (through the router for ``auto``)."""
        name = body["model"]
        target = self.catalog.routers.get(name)
        allowed = ctx.principal.allowed_models
        if target is None:
            if allowed is not None and name not in allowed:
                raise PermissionDeniedError(f"this key may not use model `{name}`", param="model")
            deployments = self.catalog.model(name)
            return Plan(self._pick(deployments))
        decision = await self._route(target, body, ctx)
        return Plan(self._pick(self.catalog.model(decision.model)), decision, query=query_text(body))

    def _pick(self, deployments: list[Deployment]) -> Deployment:
        if len(deployments) == 1:
            return deployments[0]
        cooling = self.cooldowns.cooling()
        live = [d for d in deployments if d.index not in cooling] or deployments
        return live[weighted_choice([d.entry.litellm_params.weight for d in live])]

    def _chain(self, plan: Plan, ctx: RequestContext) -> list[Deployment]:
        """The deployments to try in order: the plan's, then fallbacks, cooled-down ones last."""
        primary = plan.deployment.entry.model_name
        names = list(self.cfg.router_settings.fallback_chain(primary))
        if not names and plan.decision is not None:  # auto: the router's next-best candidates
            ranked = sorted(plan.decision.scores.items(), key=lambda kv: -kv[1])
            names = [m for m, _ in ranked if m != primary][:2]
        allowed = ctx.principal.allowed_models
        chain = [plan.deployment] + [
            self._pick(self.catalog.deployments[n]) for n in names
            if n in self.catalog.deployments and (allowed is None or n in allowed)
        ]
        cooling = self.cooldowns.cooling()
        return [d for d in chain if d.index not in cooling] + [d for d in chain if d.index in cooling]

    async def _failed(self, dep: Deployment, err: RouteIQError, ctx: RequestContext) -> None:
        if await self.cooldowns.failure(dep.index):
            self.metrics.cooldown(model=dep.entry.model_name)
            log.warning("%s (deployment %d) cools down for %.0f s after repeated failures",
                        dep.entry.model_name, dep.index, self.cfg.router_settings.cooldown_time_s)
        log.info("request %s: %s failed (%s), trying the next deployment",
                 ctx.request_id, dep.entry.model_name, err.code)

    async def _route(self, target: RouterTarget, body: dict[str, Any], ctx: RequestContext) -> RouteDecision:
        cands = fitting(target.candidates, body, ctx.principal.allowed_models)
        cooling = self.cooldowns.cooling()
        if warm := tuple(c for c in cands if any(d.index not in cooling for d in self.catalog.deployments[c.name])):
            cands = warm  # never route to a model whose every deployment cools down
        opts = body.get("routeiq") or {}
        lam = opts.get("lambda", ctx.lam if ctx.lam is not None else target.lam)
        with tracer().start_as_current_span("routeiq.route", context=ctx.otel) as span:
            query = RouteQuery(target.router.name, query_text(body), cands, lam, ctx.request_id,
                               trace=headers_for(trace_context(span)))
            started = time.perf_counter()
            try:
                if self._router is None:
                    raise RuntimeError("no router-scoring deployment")
                async with asyncio.timeout(target.router.timeout_ms / 1000):
                    decision = await self._router.route(query)
            except Exception as err:  # noqa: BLE001  (any router failure falls back, by design)
                why = "timed out" if isinstance(err, TimeoutError) else f"failed ({type(err).__name__}: {err})"
                decision = self._fallback(target, query, why, time.perf_counter() - started)
            if decision.error is not None:  # the scorer could not decide this query (and only this one)
                decision = self._fallback(target, query, f"could not decide ({decision.error})",
                                          time.perf_counter() - started)
            elapsed = time.perf_counter() - started
            span.set_attributes(_route_attributes(decision, query, elapsed))
        self.metrics.routed(router=target.router.name, strategy=decision.strategy, model=decision.model,
                            seconds=elapsed)
        return decision

    @staticmethod
    def _fallback(target: RouterTarget, query: RouteQuery, why: str, elapsed: float) -> RouteDecision:
        model = target.router.fallback_model or min(query.candidates, key=lambda c: c.price).name
        log.warning("router %s %s; falling back to %s", target.router.name, why, model,
                    extra={"request_id": query.request_id})
        return RouteDecision(model=model, strategy="fallback", reason=f"router {why}", lam=query.lam,
                             latency_ms=elapsed * 1000, fallback=True)

    def call(self, endpoint: Endpoint, body: dict[str, Any], plan: Plan, ctx: RequestContext) -> ProviderCall:
        """The provider call for a planned request."""
        stream_options = body.get("stream_options") or {}
        return ProviderCall(
            endpoint=endpoint,
            deployment=plan.deployment.index,
            body=body,
            request_id=ctx.request_id,
            headers={"x-request-id": ctx.request_id, **ctx.trace_headers},
            include_usage=bool(stream_options.get("include_usage")),
            timeout_s=self._timeout,
        )

    async def _admitted_plan(self, body: dict[str, Any], ctx: RequestContext) -> Plan:
        plan = ctx.plan = await self.plan(body, ctx)
        await self.policy.admit(ctx.principal, plan.deployment.entry.model_name, estimate_tokens(body))
        return plan

    async def finish(self, ctx: RequestContext, plan: Plan, usage: Usage) -> None:
        """Settle a finished request (spend, tokens) with the access policy."""
        self.metrics.usage(model=plan.deployment.entry.model_name, prompt_tokens=usage.prompt_tokens,
                           completion_tokens=usage.completion_tokens, cost=usage.cost)
        await self.policy.settle(ctx.principal, plan.deployment.entry.model_name, usage, ctx.request_id)

    async def complete(
        self, endpoint: Endpoint, body: dict[str, Any], ctx: RequestContext
    ) -> tuple[Plan, ProviderResult]:
        """A non-streamed request, end to end, along its fallback chain."""
        plan = await self._admitted_plan(body, ctx)
        chain = self._chain(plan, ctx)
        for i, dep in enumerate(chain):
            attempt = self._attempt(plan, dep)
            try:
                call = self.call(endpoint, body, attempt, ctx)
                result = await self._providers.complete(dep.entry.provider_group, call)
            except FALLBACK_ERRORS as err:
                await self._failed(dep, err, ctx)
                if i == len(chain) - 1:
                    raise
                continue
            await self.finish(ctx, attempt, result.usage)
            return attempt, result
        raise AssertionError("a chain has at least one deployment")

    def _attempt(self, plan: Plan, dep: Deployment) -> Plan:
        if dep is plan.deployment:
            return plan
        self.metrics.fallback(from_model=plan.deployment.entry.model_name, to_model=dep.entry.model_name)
        return Plan(dep, plan.decision, fallback_from=plan.deployment.entry.model_name, query=plan.query)

    async def stream(
        self, endpoint: Endpoint, body: dict[str, Any], ctx: RequestContext
    ) -> tuple[Plan, StreamItem, AsyncIterator[StreamItem]]:
        """A streamed request: its plan, its first item (errors surface here), the rest."""
        if endpoint == "embeddings":
            raise InvalidRequestError("embeddings cannot be streamed", param="stream")
        plan = await self._admitted_plan(body, ctx)
        chain = self._chain(plan, ctx)
        for i, dep in enumerate(chain):
            attempt = self._attempt(plan, dep)
            items = aiter(self._providers.stream(dep.entry.provider_group, self.call(endpoint, body, attempt, ctx)))
            try:
                first = await anext(items)
            except FALLBACK_ERRORS as err:  # nothing reached the client yet: fall back
                await self._failed(dep, err, ctx)
                if i == len(chain) - 1:
                    raise
                continue
            return attempt, first, items
        raise AssertionError("a chain has at least one deployment")


def trace_context(span: Any) -> Context:
    """A context whose current span is ``span``."""
    from opentelemetry import trace

    return trace.set_span_in_context(span)


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
