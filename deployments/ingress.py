"""Ingress deployment: the FastAPI app of ``app/``, mounted with ``serve.ingress``.

The app is built per replica (``__serve_build_asgi_app__``) around a ``Gateway`` that
``app.wiring.build_gateway`` composes; its two collaborators are the DeploymentHandles
of the router-scoring and provider-call deployments, adapted to the
``RouterClient``/``ProviderPool`` protocols in ``deployments.handles``.
``Ingress.__init__`` is one call.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from app.config import GatewayConfig
from app.config_sync import GraphUpdater
from app.gateway import Gateway, RouterClient
from app.gateway.split_router import SplitRouter
from app.logs import setup_logging
from app.main import create_app
from app.routes.health import readiness_report
from app.tracing import configure_tracing
from app.wiring import build_gateway
from deployments.handles import Handle, HandleProviders, HandleRouter
from deployments.metrics import RouterVersionMetrics, ServeMetrics
from deployments.router_sync import LocalScoring, build_scoring, one_blas_thread
from router_models.inference.types import RouterSpec


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


def compose(cfg: GatewayConfig, router: Handle | None, providers: dict[str, Handle],
            updater: GraphUpdater | None = None, local_routers: Sequence[RouterSpec] = (),
            ) -> tuple[Gateway, GraphProbe, LocalScoring | None]:
    """Everything an ingress replica runs on: logging, tracing, the gateway over the handles,
    and the scorer of the ``scoring: ingress`` routers (``app.gateway.split_router``)."""
    setup_logging("ingress", cfg)
    configure_tracing("ingress")
    replica = _replica_id()
    client: RouterClient | None = HandleRouter(router) if router else None
    local = None
    if local_routers:
        if any(s.strategy == "learned" for s in local_routers):  # numpy heads; a cost-first decision has none
            one_blas_thread()
        label = replica or f"{socket.gethostname()}:{os.getpid()}"  # outside Serve (a test)
        local = _local_scoring(cfg, local_routers, label)
        client = SplitRouter(local, frozenset(s.name for s in local_routers), client, label)
    gateway = build_gateway(cfg, HandleProviders(providers), client, metrics=ServeMetrics(), replica=replica,
                            updater=updater)
    return gateway, GraphProbe(router, providers), local


def _local_scoring(cfg: GatewayConfig, specs: Sequence[RouterSpec], replica: str) -> LocalScoring:
    """The routers this replica scores itself, loaded (and following a registry) as a scorer replica's."""
    key = os.environ.get("ROUTEIQ_ROUTER_SIGNING_KEY")
    service, sync = build_scoring(specs, cfg.scorer_sync_settings(), signing_key=key.encode() if key else None,
                                  replica=replica, on_round=RouterVersionMetrics().observe)
    return LocalScoring(service, sync)


def _replica_id() -> str | None:
    """This replica's Serve id (``/config/sync/status`` lists replicas by it); ``None`` outside Serve."""
    from ray import serve
    from ray.serve.exceptions import RayServeException

    try:
        return str(serve.get_replica_context().replica_id.unique_id)
    except RayServeException:  # built outside a replica (a test)
        return None


class Ingress:
    """Auth, validation and the request path, in front of the graph."""

    def __init__(
        self, cfg: GatewayConfig, router: Handle | None, providers: dict[str, Handle],
        updater: GraphUpdater | None = None, local_routers: Sequence[RouterSpec] = (),
    ) -> None:
        self._gateway, self._graph, self._local, self._was_ready = *compose(cfg, router, providers, updater,
                                                                            local_routers), False

    def __del__(self) -> None:
        if (local := getattr(self, "_local", None)) is not None:
            local.stop()

    def __serve_build_asgi_app__(self) -> Any:
        # Serve's proxy (and direct ingress) echoes x-request-id itself
        return create_app(self._gateway, self._readiness, echo_request_id=False)

    async def _readiness(self, server: tuple[str, int] | None) -> dict[str, Any]:
        serve_state = await serve_health(server)
        if serve_state == "draining":
            return {"status": "draining"}
        graph = await self._graph.states()
        report = await readiness_report(self._gateway)
        away = sorted(name for name, state in graph.items() if state != "up")
        if away and not self._was_ready:
            report["status"] = "starting"  # 503 until the whole graph has answered once
        elif away:
            # Later, a deployment whose replicas are gone (being replaced) degrades this replica
            # (the gateway falls back, retries, answers 503 for what nothing can serve); it
            # stays in rotation: taking every ingress out would turn a partial outage into a full one.
            report["status"] = "degraded"
            report["degraded"] = away
        else:
            self._was_ready = True
        return {**report, "graph": graph}
