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

from app.auth import AccessPolicy, MasterKeyPolicy, Principal
from app.catalog import Deployment, ModelCatalog, RouterTarget, estimate_tokens, fitting, query_text
from app.config import GatewayConfig
from app.errors import InvalidRequestError, PermissionDeniedError
from app.providers.base import Endpoint, ProviderCall, ProviderResult, StreamItem, Usage
from router_models.inference.strategies import weighted_choice
from router_models.inference.types import RouteDecision, RouteQuery

log = logging.getLogger("routeiq.gateway")


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


@dataclass
class Plan:
    """Where a request goes: the deployment, and the routing decision if any."""

    deployment: Deployment
    decision: RouteDecision | None = None

    def headers(self) -> dict[str, str]:
        h = {"x-routeiq-model": self.deployment.entry.model_name}
        if self.decision is not None:
            h["x-routeiq-strategy"] = self.decision.strategy
            if self.decision.lam is not None:
                h["x-routeiq-lambda"] = f"{self.decision.lam:g}"
        return h


class Gateway:
    """Resolves, routes and calls; one per ingress replica."""

    def __init__(
        self,
        cfg: GatewayConfig,
        providers: ProviderPool,
        router: RouterClient | None,
        policy: AccessPolicy | None = None,
    ) -> None:
        self.cfg = cfg
        self.catalog = ModelCatalog(cfg)
        self.policy: AccessPolicy = policy or MasterKeyPolicy(cfg.master_key)
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
        return Plan(self._pick(self.catalog.model(decision.model)), decision)

    @staticmethod
    def _pick(deployments: list[Deployment]) -> Deployment:
        if len(deployments) == 1:
            return deployments[0]
        return deployments[weighted_choice([d.entry.litellm_params.weight for d in deployments])]

    async def _route(self, target: RouterTarget, body: dict[str, Any], ctx: RequestContext) -> RouteDecision:
        cands = fitting(target.candidates, body, ctx.principal.allowed_models)
        opts = body.get("routeiq") or {}
        lam = opts.get("lambda", ctx.lam if ctx.lam is not None else target.lam)
        query = RouteQuery(target.router.name, query_text(body), cands, lam, ctx.request_id)
        started = time.perf_counter()
        try:
            if self._router is None:
                raise RuntimeError("no router-scoring deployment")
            async with asyncio.timeout(target.router.timeout_ms / 1000):
                return await self._router.route(query)
        except Exception as err:  # noqa: BLE001  (any router failure falls back, by design)
            return self._fallback(target, query, err, time.perf_counter() - started)

    @staticmethod
    def _fallback(target: RouterTarget, query: RouteQuery, err: BaseException, elapsed: float) -> RouteDecision:
        model = target.router.fallback_model or min(query.candidates, key=lambda c: c.price).name
        why = "timed out" if isinstance(err, TimeoutError) else f"failed ({type(err).__name__}: {err})"
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
        plan = await self.plan(body, ctx)
        await self.policy.admit(ctx.principal, plan.deployment.entry.model_name, estimate_tokens(body))
        return plan

    async def finish(self, ctx: RequestContext, plan: Plan, usage: Usage) -> None:
        """Settle a finished request (spend, tokens) with the access policy."""
        await self.policy.settle(ctx.principal, plan.deployment.entry.model_name, usage, ctx.request_id)

    async def complete(self, endpoint: Endpoint, body: dict[str, Any], ctx: RequestContext) -> tuple[Plan, ProviderResult]:
        """A non-streamed request, end to end."""
        plan = await self._admitted_plan(body, ctx)
        result = await self._providers.complete(plan.deployment.entry.provider_group, self.call(endpoint, body, plan, ctx))
        await self.finish(ctx, plan, result.usage)
        return plan, result

    async def stream(
        self, endpoint: Endpoint, body: dict[str, Any], ctx: RequestContext
    ) -> tuple[Plan, StreamItem, AsyncIterator[StreamItem]]:
        """A streamed request: its plan, its first item (errors surface here), the rest."""
        if endpoint == "embeddings":
            raise InvalidRequestError("embeddings cannot be streamed", param="stream")
        plan = await self._admitted_plan(body, ctx)
        items = aiter(self._providers.stream(plan.deployment.entry.provider_group, self.call(endpoint, body, plan, ctx)))
        first = await anext(items)
        return plan, first, items
