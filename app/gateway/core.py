"""The gateway's core: resolve the model, route, admit, call along the fallback chain.

``Gateway`` knows nothing of Ray or HTTP: it talks to the router-scoring and
provider-call deployments through two small protocols (``RouterClient``,
``ProviderPool``), which ``deployments.ingress`` implements over DeploymentHandles
and tests implement in-process. A request naming a concrete model never reaches the
router. Each request's lifecycle (admission, metrics, span, decision record,
settlement) is owned by its ``Exchange`` (``gateway.exchange(...)``), never by this
class or a route; ``app.wiring.build_gateway`` is where a gateway is put together.

Every await on another deployment has an ingress-side deadline: the provider's own
deadline plus a margin, so a hung or lost replica surfaces as a 504, never a hang.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal, Protocol

from app.auth import AccessPolicy, Demand, Reservation
from app.config import GatewayConfig
from app.errors import (
    InvalidRequestError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    ReplicaUnavailableError,
    RouteIQError,
    UpstreamError,
    UpstreamTimeoutError,
)
from app.gateway.admission import Admission
from app.gateway.catalog import Deployment, ModelCatalog, fitting, query_text
from app.gateway.cooldowns import Cooldowns
from app.gateway.decisions import DecisionLog
from app.gateway.deployment_choice import DeploymentChooser, DeploymentStats
from app.gateway.deployment_limits import DeploymentLimits
from app.gateway.exchange import Exchange
from app.gateway.exploration import Explorer, LocalExploreBudget
from app.gateway.metrics import Metrics, NoRequestRecorder, RequestRecorder
from app.gateway.plan import Plan, RequestContext
from app.gateway.router_info import RouterInfo
from app.gateway.routing import RouterClient, Routing
from app.providers.anthropic_native import speaks_messages
from app.providers.base import Endpoint, Prices, ProviderCall, ProviderResult, StreamItem, Usage
from app.providers.estimate import estimate_tokens
from app.providers.responses_native import speaks_responses

if TYPE_CHECKING:
    from app.audit.service import AuditService

log = logging.getLogger("routeiq.gateway")
FALLBACK_ERRORS = (RateLimitError, UpstreamError, UpstreamTimeoutError, OverloadedError)
"""Failures another deployment may not have: try the next one in the chain."""
UPSTREAM_FAILURES = (RateLimitError, UpstreamError, UpstreamTimeoutError)
"""Failures of the upstream itself, which count towards a cooldown (the gateway's own
back-pressure, a 503 ``OverloadedError``, is not the upstream's fault)."""
SPECIAL_FALLBACKS = {"context_length_exceeded": "context_window_fallbacks",
                     "content_policy_violation": "content_policy_fallbacks"}
"""An upstream's 400 with one of these codes tries the model's fallbacks of that kind
(``app.providers.errors`` gives the codes; LiteLLM's ``context_window_fallbacks`` and
``content_policy_fallbacks``)."""
HANDLE_MARGIN_S = 5.0
"""Added to a provider's own deadline for the ingress-side one (handle and queue time)."""


class ProviderPool(Protocol):
    """The provider-call deployments, one per provider group."""

    async def complete(self, group: str, call: ProviderCall) -> ProviderResult: ...

    def stream(self, group: str, call: ProviderCall) -> AsyncIterator[StreamItem]: ...

    async def close(self) -> None:
        """Release what the pool holds (in-process callers' connections; handles: nothing)."""
        ...


class Closeable(Protocol):
    async def close(self) -> None: ...


class ConfigSyncLike(Protocol):
    """What the gateway needs of its config watcher (``app.config_sync.ConfigSync``)."""

    def start(self) -> None: ...

    async def close(self) -> None: ...

    def health(self) -> dict[str, Any] | None: ...


class Gateway:
    """Resolves, routes and calls; one per ingress replica."""

    def __init__(
        self,
        cfg: GatewayConfig,
        providers: ProviderPool,
        router: RouterClient | None,
        *,
        policy: AccessPolicy,
        cooldowns: Cooldowns,
        metrics: Metrics,
        decisions: DecisionLog,
        clients: Closeable | None = None,
        router_info: RouterInfo | None = None,
        explorer: Explorer | None = None,
        deployment_limits: DeploymentLimits | None = None,
        audit: AuditService | None = None,
        request_stats: RequestRecorder | None = None,
    ) -> None:
        self.cfg = cfg
        self.router_info = router_info or RouterInfo(cfg, router, None)
        self.catalog = ModelCatalog(cfg)
        self.policy = policy
        self.cooldowns = cooldowns
        self.metrics = metrics
        self.decisions = decisions
        self.request_stats = request_stats or NoRequestRecorder()
        """Every finished request per minute and model, in the database (the console reads it)."""
        self.admission = Admission(cfg.general_settings.max_inflight_requests,
                                   on_change=lambda n, s: metrics.load(inflight=n, active_streams=s))
        self.routing = Routing(router, metrics)
        self.explorer = explorer or Explorer(
            {r.name: r.exploration for r in cfg.router_settings.routers}, LocalExploreBudget())
        self._providers = providers
        self._clients = clients
        self.audit = audit
        self._prices: dict[int, Prices] = {}
        self._transports = {g.name: g.transport for g in cfg.groups()}
        self._tasks: set[asyncio.Task[None]] = set()
        self.deployment_limits = deployment_limits
        self.stats = DeploymentStats()
        strategy = cfg.router_settings.routing_strategy
        usage = deployment_limits.tokens_used if deployment_limits is not None else None
        self.chooser = DeploymentChooser(strategy, self.stats, usage)
        general = cfg.general_settings
        self._timeout = general.request_timeout_s
        self._entries_in_calls = False
        self.config_sync: ConfigSyncLike | None = None
        """The replica's config watcher (``app.config_sync``), started and closed with the gateway."""
        self.stream_idle_s = general.stream_idle_timeout_s + HANDLE_MARGIN_S
        """The ingress-side bound on the silence between two items of a provider stream."""

    def reconfigure(self, cfg: GatewayConfig) -> None:
        """Swap in a new config snapshot whose changes apply in place (``app.config_sync.changes``).

        Everything derived from the config is built first, then assigned with no await in
        between: on the replica's one event loop no request sees half of each. A request
        already past planning keeps the deployment (and prices) it planned with. From now
        on each provider call carries its model entry: the provider replicas were bound
        with the entries of the config the graph was built from.
        """
        catalog = ModelCatalog(cfg)
        transports = {g.name: g.transport for g in cfg.groups()}
        routers = {r.name: r.exploration for r in cfg.router_settings.routers}
        self.cfg, self.catalog, self._prices, self._transports = cfg, catalog, {}, transports
        self._timeout = cfg.general_settings.request_timeout_s
        self.explorer.configure(routers)
        self.router_info.reconfigure(cfg)
        self._entries_in_calls = True

    # lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect what needs connecting: the policy first (it runs the migrations)."""
        await self.policy.start()
        await self.decisions.start()
        await self.request_stats.start()
        await self.cooldowns.start()
        if self.config_sync is not None:
            self.config_sync.start()
        if self.audit is not None:  # after the policy: its migrations create the export ledger
            self.audit.start()
        start = getattr(self._clients, "start", None)
        if start is not None:  # credential rotation of the shared clients
            start()

    async def close(self) -> None:
        """Stop background work, flush buffers, then close the shared clients."""
        if self.config_sync is not None:
            await self.config_sync.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.audit is not None:
            await self.audit.close()
        await self.cooldowns.close()
        await self.decisions.close()
        await self.request_stats.close()
        await self.policy.close()
        if self.deployment_limits is not None:
            await self.deployment_limits.close()
        await self._providers.close()
        if self._clients is not None:
            await self._clients.close()

    async def health(self) -> dict[str, Any]:
        """Readiness detail of the replica's dependencies (breaker states, buffers)."""
        detail = await self.policy.health()
        if self.audit is not None:
            detail.update(self.audit.health())
        report = getattr(self._clients, "credentials", None)
        if report is not None and (rotated := report.detail()) is not None:
            detail["credentials"] = rotated  # states and type names only
        if self.catalog.routers:
            detail["router_scoring"] = self.routing.report()
        if (sync := await self.router_info.sync_detail()) is not None:
            # Counts, not messages (readiness is unauthenticated); never "down": a failed
            # sync keeps the loaded version serving. The errors: /router/info (admin).
            detail["router_sync"] = sync
        if (uncovered := await self.router_info.coverage_detail()) is not None:
            # Named: a learned router that cannot score some candidates never picks them.
            detail["router_coverage"] = uncovered
        if self.config_sync is not None and (sync_state := self.config_sync.health()) is not None:
            detail["config_sync"] = sync_state  # degraded, still serving the running config
        return detail

    def exchange(self, endpoint: Endpoint, request_id: str, headers: Mapping[str, str], route: str) -> Exchange:
        """Admit one request (503 when full) and return the object that owns it to the end."""
        return Exchange.open(self, endpoint, request_id, headers, route)

    # planning -------------------------------------------------------------------------------
    async def plan(self, body: dict[str, Any], ctx: RequestContext) -> Plan:
        """Pick the deployment for this request (through the router for ``auto``)."""
        name = ctx.steering.model
        target = self.catalog.routers.get(name)
        allowed = ctx.principal.allowed_models
        if target is None:
            if allowed is not None and name not in allowed:
                raise PermissionDeniedError(f"this key may not use model `{name}`", param="model")
            return Plan(await self._pick(self.catalog.model(name)))
        cands = fitting(target.candidates, body, allowed)
        cooling = self.cooldowns.cooling()
        if warm := tuple(c for c in cands if any(d.index not in cooling for d in self.catalog.deployments[c.name])):
            cands = warm  # never route to a model whose every deployment cools down
        lam = next((x for x in (ctx.steering.lam, ctx.lam, target.lam) if x is not None), None)
        text = query_text(body)
        decision = await self.routing.decide(target, text, cands, lam, ctx.request_id, ctx.otel)
        decision = await self.explorer.choose(target.router.name, decision, cands, key_id=ctx.principal.key_id,
                                              opted_out=not (ctx.explore and ctx.principal.explore))
        return Plan(await self._pick(self.catalog.model(decision.model)), decision, query=text,
                    candidates=tuple(c.name for c in cands))

    async def _rank(self, deployments: list[Deployment]) -> list[Deployment]:
        """A model group in the order to try it: by ``routing_strategy``, cooled-down ones last."""
        cooling = self.cooldowns.cooling()
        live = [d for d in deployments if d.index not in cooling]
        return await self.chooser.rank(live) + [d for d in deployments if d.index in cooling]

    async def _pick(self, deployments: list[Deployment]) -> Deployment:
        return (await self._rank(deployments))[0]

    async def _chain(self, plan: Plan, body: dict[str, Any], ctx: RequestContext) -> list[list[Deployment]]:
        """The model groups to try in order: the plan's (its deployment first), then fallbacks
        (only models this key may use and this request fits), cooled-down groups last. Within
        a group, the next deployment is tried only when one is at its rpm/tpm limit."""
        primary = plan.model
        names = list(self.cfg.router_settings.fallback_chain(primary))
        if not names and plan.decision is not None:  # auto: the router's next-best candidates
            ranked = sorted(plan.decision.scores.items(), key=lambda kv: -kv[1])
            names = [m for m, _ in ranked if m != primary][:2]
        siblings = [d for d in await self._rank(self.catalog.model(primary)) if d.index != plan.deployment.index]
        chain = [[plan.deployment, *siblings], *await self._groups(names, body, ctx)]
        cooling = self.cooldowns.cooling()
        return [g for g in chain if g[0].index not in cooling] + [g for g in chain if g[0].index in cooling]

    async def _groups(self, names: list[str], body: dict[str, Any], ctx: RequestContext) -> list[list[Deployment]]:
        """The fallback models ``names`` that exist, this key may use and this request fits, ranked."""
        known = [self.catalog.candidate(n) for n in names if self.catalog.resolve(n) is not None]
        fits = {c.name for c in fitting(tuple(known), body, ctx.principal.allowed_models, strict=False)}
        return [await self._rank(self.catalog.model(n)) for n in names if n in fits]

    async def _admit_one(self, group: list[Deployment], demand: Demand, ctx: RequestContext) -> Deployment | float:
        """The first deployment of ``group`` under its rpm/tpm limits (counted and held in
        ``ctx.deployment_hold``), else the seconds until the first of them has room."""
        if self.deployment_limits is None:
            return group[0]
        waits = []
        for dep in group:
            held = await self.deployment_limits.admit(dep, demand)
            if not isinstance(held, float):
                ctx.deployment_hold = (dep, held)
                return dep
            waits.append(held)
        return min(waits)

    def settle_deployment(self, ctx: RequestContext, usage: Usage | None) -> None:
        """Replace the deployment's hold with the tokens its answer used (``None``: no answer)."""
        hold, ctx.deployment_hold = ctx.deployment_hold, None
        if hold is None or self.deployment_limits is None:
            return
        task = asyncio.create_task(self._charge_deployment(*hold, usage.total_tokens if usage else 0))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _charge_deployment(self, dep: Deployment, held: Reservation, tokens: int) -> None:
        assert self.deployment_limits is not None
        try:
            async with asyncio.timeout(self.cfg.general_settings.access.redis_timeout_s * 2):
                await self.deployment_limits.charge(dep, tokens, held)
        except Exception as err:  # noqa: BLE001  (the hold expires with its window: never fail a request)
            log.warning("deployment %d: usage not recorded (%s)", dep.index, type(err).__name__)

    async def _admitted_plan(self, body: dict[str, Any], ctx: RequestContext) -> Plan:
        plan = ctx.plan = await self.plan(body, ctx)
        # The name the key's model list was checked against: the router's pick, else the
        # requested name (an alias or a wildcard's concrete name, not the group it resolves to).
        checked = plan.model if plan.decision is not None else ctx.steering.model
        ctx.reservation = await self.policy.admit(ctx.principal, checked, self.demand(body, ctx, plan))
        return plan

    def demand(self, body: dict[str, Any], ctx: RequestContext, plan: Plan) -> Demand:
        """What admission reserves: the prompt estimate and up to ``max_tokens`` per choice (else
        the model's ``max_output_tokens``, else ``access.reserve_output_tokens``), priced."""
        info = plan.deployment.entry.model_info
        if info.mode == "embedding":
            out = 0
        else:
            default = self.cfg.general_settings.access.reserve_output_tokens
            out = ctx.steering.max_tokens or min(default, info.max_output_tokens or default)
        prices = self.prices(plan.deployment)
        prompt, completion = estimate_tokens(body), out * max(1, ctx.steering.n)
        demand = Demand(prompt + completion, prices.cost(prompt, completion))
        if ctx.steering.max_tokens is None:  # a default answer length: only the prompt must fit
            return Demand(demand.tokens, demand.cost, prompt, prices.cost(prompt, 0))
        return demand

    def prices(self, deployment: Deployment) -> Prices:
        """A deployment's $ per token (config, else litellm's bundled map), once per replica."""
        if deployment.wildcard:  # a different model per request: not cached per index
            return Prices.of(deployment.entry)
        if (found := self._prices.get(deployment.index)) is None:
            found = self._prices[deployment.index] = Prices.of(deployment.entry)
        return found

    def _attempt(self, plan: Plan, dep: Deployment) -> Plan:
        if dep is plan.deployment:
            return plan
        if dep.entry.model_name == plan.model:  # another deployment of the same group
            return Plan(dep, plan.decision, query=plan.query)
        self.metrics.fallback(from_model=plan.model, to_model=dep.entry.model_name)
        return Plan(dep, plan.decision, fallback_from=plan.model, query=plan.query)

    async def _failed(self, dep: Deployment, err: RouteIQError, ctx: RequestContext) -> None:
        if isinstance(err, UPSTREAM_FAILURES) and await self.cooldowns.failure(dep.index, ctx.principal.key_id):
            self.metrics.cooldown(model=dep.entry.model_name)
            log.warning("%s (deployment %d) cools down for %.0f s after repeated failures",
                        dep.entry.model_name, dep.index, self.cfg.router_settings.cooldown_time_s)
        log.info("request %s: %s failed (%s), trying the next deployment",
                 ctx.request_id, dep.entry.model_name, err.code)

    def speaks_messages(self, deployment: Deployment) -> bool:
        """Whether this deployment serves a Messages request natively (else it gets the chat translation)."""
        return self.speaks(deployment, "messages")

    def speaks(self, deployment: Deployment, api: Literal["messages", "responses"]) -> bool:
        """Whether this deployment serves a request in ``api`` natively (else it gets the chat translation)."""
        transport = self._transports.get(deployment.entry.provider_group, "auto")
        entry = deployment.entry
        return transport == "auto" and (speaks_messages(entry) if api == "messages" else speaks_responses(entry))

    def call(self, endpoint: Endpoint, body: dict[str, Any], plan: Plan, ctx: RequestContext) -> ProviderCall:
        """The provider call for a planned request (a native Messages or Responses call where the
        deployment speaks that API)."""
        native = ctx.native if ctx.native is not None and self.speaks(plan.deployment, ctx.native.endpoint) else None
        return ProviderCall(
            endpoint=native.endpoint if native else endpoint,
            deployment=plan.deployment.index,
            body=native.body if native else body,
            request_id=ctx.request_id,
            headers={"x-request-id": ctx.request_id, **ctx.trace_headers, **(native.headers if native else {})},
            include_usage=ctx.steering.include_usage,
            timeout_s=self._timeout,
            model=plan.deployment.entry.litellm_params.model if plan.deployment.wildcard else None,
            entry=plan.deployment.entry if self._entries_in_calls else None,
        )

    # calling --------------------------------------------------------------------------------
    async def _along_chain(self, body: dict[str, Any], ctx: RequestContext,
                           attempt: Callable[[Plan], Awaitable[Any]]) -> tuple[Plan, Any]:
        """Try the plan's deployment, then its fallbacks, until one answers; a deployment at its
        rpm/tpm limit gives way to another of its group (429 when every one is)."""
        plan = await self._admitted_plan(body, ctx)
        groups = self._servable(await self._chain(plan, body, ctx), plan, ctx)
        demand = self.demand(body, ctx, plan)
        last: RouteIQError | None = None
        while groups:
            dep = await self._admit_one(groups.pop(0), demand, ctx)
            if isinstance(dep, float):
                last = last or RateLimitError(f"every deployment of `{plan.model}` is at its rpm/tpm limit",
                                              retry_after=dep, code="deployment_rate_limited")
                continue
            tried = self._attempt(plan, dep)
            self.stats.started(dep.index)
            started, took = time.perf_counter(), None
            try:
                result = await _on_a_live_replica(tried, attempt, ctx.request_id)
                took = time.perf_counter() - started
                return tried, result
            except FALLBACK_ERRORS as err:
                self.settle_deployment(ctx, None)
                await self._failed(dep, err, ctx)
                last = err
            except InvalidRequestError as err:
                self.settle_deployment(ctx, None)
                kind = SPECIAL_FALLBACKS.get(err.code or "")
                names = list(self.cfg.router_settings.fallback_chain(dep.entry.model_name, kind)) if kind else []
                if not (extra := self._servable(await self._groups(names, body, ctx), plan, ctx, strict=False)):
                    raise
                log.info("request %s: %s answered %s; trying %s", ctx.request_id, dep.entry.model_name, err.code,
                         kind)
                groups[:0], last = extra, err
            finally:
                self.stats.finished(dep.index, took)
        assert last is not None, "a chain has at least one group"
        raise last

    def _servable(self, groups: list[list[Deployment]], plan: Plan, ctx: RequestContext, *,
                  strict: bool = True) -> list[list[Deployment]]:
        """The chain without deployments that cannot serve what only a native Messages call
        carries (400 when none is left and ``strict``)."""
        needs = ctx.native.only_native if ctx.native is not None else None
        if needs is None:
            return groups
        api = ctx.native.endpoint if ctx.native is not None else "messages"
        kept = [native for group in groups if (native := [d for d in group if self.speaks(d, api)])]
        if not kept and strict:
            raise InvalidRequestError(f"{needs} is served only by a model whose upstream speaks Anthropic's "
                                      f"Messages API natively; `{plan.model}` does not", param="messages")
        return kept

    async def complete(
        self, endpoint: Endpoint, body: dict[str, Any], ctx: RequestContext
    ) -> tuple[Plan, ProviderResult]:
        """A non-streamed request, along its fallback chain."""

        async def attempt(plan: Plan) -> ProviderResult:
            call = self.call(endpoint, body, plan, ctx)
            async with _deadline(call.timeout_s + HANDLE_MARGIN_S, plan.model, "an answer"):
                return await self._providers.complete(plan.deployment.entry.provider_group, call)

        return await self._along_chain(body, ctx, attempt)

    async def stream(
        self, endpoint: Endpoint, body: dict[str, Any], ctx: RequestContext
    ) -> tuple[Plan, tuple[StreamItem, AsyncIterator[StreamItem]]]:
        """A streamed request: its plan, its first item (errors surface here) and the rest."""
        if endpoint == "embeddings":
            raise InvalidRequestError("embeddings cannot be streamed", param="stream")

        async def attempt(plan: Plan) -> tuple[StreamItem, AsyncIterator[StreamItem]]:
            call = self.call(endpoint, body, plan, ctx)
            items = aiter(self._providers.stream(plan.deployment.entry.provider_group, call))
            try:
                async with _deadline(call.timeout_s + HANDLE_MARGIN_S, plan.model, "first chunk"):
                    return await anext(items), items
            except BaseException:
                await _close(items)  # nothing reached the client: cancel this attempt's call
                raise

        return await self._along_chain(body, ctx, attempt)


async def _on_a_live_replica(plan: Plan, attempt: Callable[[Plan], Awaitable[Any]], request_id: str) -> Any:
    """One attempt, and once more if the provider replica that took it died: Serve sends the
    retry to a live replica (or queues it for the replacement), within its own deadline."""
    try:
        return await attempt(plan)
    except ReplicaUnavailableError as err:
        log.warning("request %s: %s (%s); trying another replica", request_id, plan.model, err.message)
        return await attempt(plan)


@asynccontextmanager
async def _deadline(seconds: float, model: str, what: str) -> AsyncIterator[None]:
    """``asyncio.timeout`` whose expiry is a 504 naming the model and what was awaited."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise UpstreamTimeoutError(f"{model}: no {what} within {seconds:g} s (provider deployment)") from None


async def _close(items: AsyncIterator[StreamItem]) -> None:
    close = getattr(items, "aclose", None)
    if close is not None:
        await close()
