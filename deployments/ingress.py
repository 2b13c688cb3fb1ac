"""Ingress deployment: the FastAPI app of ``app/``, mounted with ``serve.ingress``.

The app is built per replica (``__serve_build_asgi_app__``) around a ``Gateway`` that
``app.wiring.build_gateway`` composes; its two collaborators are the DeploymentHandles
of the router-scoring and provider-call deployments, adapted here to the
``RouterClient``/``ProviderPool`` protocols. ``Ingress.__init__`` is one call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

from app.config import GatewayConfig
from app.errors import OverloadedError
from app.gateway import Gateway
from app.logs import setup_logging
from app.main import create_app
from app.providers.base import ProviderCall, ProviderResult, StreamItem
from app.routes.health import readiness_report
from app.tracing import configure_tracing
from app.wiring import build_gateway
from deployments.metrics import ServeMetrics
from router_models.inference.types import RouteDecision, RouteQuery

Handle = DeploymentHandle[Any]


def _overloaded(err: BackPressureError) -> OverloadedError:
    """Serve's queue for a deployment is full (``max_queued_requests``): 503, retry soon."""
    return OverloadedError(f"the gateway is overloaded ({err}); retry shortly", retry_after=1.0)


class HandleRouter:
    """``RouterClient`` over the router-scoring deployment."""

    def __init__(self, handle: Handle) -> None:
        self._route = handle.route

    async def route(self, query: RouteQuery) -> RouteDecision:
        decision: RouteDecision = await self._route.remote(query)
        return decision


class HandleProviders:
    """``ProviderPool`` over the provider-call deployments (one handle per group)."""

    def __init__(self, handles: dict[str, Handle]) -> None:
        self._complete = {g: h.complete for g, h in handles.items()}
        self._stream = {g: h.options(stream=True).stream for g, h in handles.items()}

    async def complete(self, group: str, call: ProviderCall) -> ProviderResult:
        try:
            result: ProviderResult = await self._complete[group].remote(call)
        except BackPressureError as err:
            raise _overloaded(err) from None
        return result

    async def close(self) -> None:
        return None  # the provider deployments own their connections

    async def stream(self, group: str, call: ProviderCall) -> AsyncIterator[StreamItem]:
        gen = cast("DeploymentResponseGenerator[StreamItem]", self._stream[group].remote(call))
        finished = False
        try:
            try:
                async for item in gen:
                    yield item
            except BackPressureError as err:
                raise _overloaded(err) from None
            finished = True
        finally:
            if not finished:
                gen.cancel()  # type: ignore[no-untyped-call]  # the client left: cancel the provider call upstream


class GraphProbe:
    """Whether the router-scoring and provider deployments answer, for readiness.

    Serve lets the ingress take traffic before the scorer finished loading its artifact;
    readiness stays 503 ``starting`` until every downstream deployment answers a ping.
    Results are cached for ``ttl_s`` so frequent probes cost one handle call at most.
    """

    def __init__(self, router: Handle | None, providers: dict[str, Handle],
                 ttl_s: float = 2.0, timeout_s: float = 1.0) -> None:
        self._pings = {f"provider:{g}": h.ping for g, h in providers.items()}
        if router is not None:
            self._pings["router-scoring"] = router.ping
        self._ttl, self._timeout = ttl_s, timeout_s
        self._last: tuple[float, dict[str, str]] = (0.0, {})

    async def _one(self, ping: Any) -> str:
        try:
            await asyncio.wait_for(ping.remote(), self._timeout)
            return "up"
        except Exception:  # noqa: BLE001  (not answering, for whatever reason, is "unavailable")
            return "unavailable"

    async def states(self) -> dict[str, str]:
        at, states = self._last
        if time.monotonic() - at > self._ttl or any(v != "up" for v in states.values()) or not states:
            names = list(self._pings)
            results = await asyncio.gather(*(self._one(self._pings[n]) for n in names))
            states = dict(zip(names, results, strict=True))
            self._last = (time.monotonic(), states)
        return states


async def serve_health(server: tuple[str, int] | None, timeout_s: float = 1.0) -> str:
    """Serve's own dataplane health of the server a probe came through.

    Ray 2.60 tells user code nothing while a replica drains, but the replica's direct
    ingress server answers ``/-/healthz`` with 503 ``DRAINING`` from the moment the drain
    starts; asking it is how readiness turns 503 for the whole drain. Behind the Python
    proxy this is the proxy's health instead.
    """
    if not server:
        return "unknown"
    host, port = server
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.get(f"http://{host}:{port}/-/healthz") as resp,
        ):
            text = (await resp.text()).strip().strip('"')
            return "up" if resp.status == 200 else (text or "unhealthy").lower()
    except (aiohttp.ClientError, TimeoutError):
        return "unreachable"


def compose(cfg: GatewayConfig, router: Handle | None,
            providers: dict[str, Handle]) -> tuple[Gateway, GraphProbe]:
    """Everything an ingress replica runs on: logging, tracing, the gateway over the handles."""
    setup_logging("ingress", cfg)
    configure_tracing("ingress")
    gateway = build_gateway(cfg, HandleProviders(providers), HandleRouter(router) if router else None,
                            metrics=ServeMetrics())
    return gateway, GraphProbe(router, providers)


class Ingress:
    """Auth, validation and the request path, in front of the graph."""

    def __init__(
        self, cfg: GatewayConfig, router: Handle | None, providers: dict[str, Handle]
    ) -> None:
        self._gateway, self._graph = compose(cfg, router, providers)

    def __serve_build_asgi_app__(self) -> Any:
        # Serve's proxy (and direct ingress) echoes x-request-id itself
        return create_app(self._gateway, self._readiness, echo_request_id=False)

    async def _readiness(self, server: tuple[str, int] | None) -> dict[str, Any]:
        serve_state = await serve_health(server)
        if serve_state == "draining":
            return {"status": "draining"}
        graph = await self._graph.states()
        report = await readiness_report(self._gateway)
        if any(state != "up" for state in graph.values()):
            report["status"] = "starting"  # 503 until the whole graph answers
        return {**report, "graph": graph}
