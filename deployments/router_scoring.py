"""Router-scoring deployment: a shell over ``RoutingService`` with request batching.

Concurrent decisions are gathered by ``@serve.batch`` so a learned router embeds
them in one forward pass. The artifact is loaded once, in the constructor; a router
whose artifact is an ``s3://`` registry is then kept on its pointer's current version
by a sync loop (``deployments.router_sync``), which swaps versions between batches.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

from ray import serve
from ray.serve.exceptions import RayServeException

from app.config import ScorerSyncSettings
from app.logs import setup_logging
from app.tracing import configure_tracing, extract, tracer
from deployments.metrics import RouterVersionMetrics
from deployments.router_sync import build_scoring, describe_scoring, one_blas_thread
from router_models.artifacts import ArtifactError
from router_models.inference.service import RouterSpec
from router_models.inference.types import RouteDecision, RouteQuery

log = logging.getLogger("routeiq.router_scoring")


def _replica_id() -> str:
    """Serve's id of this replica (one field per replica in ``/router/info``)."""
    try:
        return str(serve.get_replica_context().replica_id.unique_id)
    except RayServeException:  # built outside a replica (a test)
        return f"{socket.gethostname()}:{os.getpid()}"


class RouterScoring:
    """Routes queries for every configured router."""

    def __init__(self, specs: Sequence[RouterSpec], allow_pickle: bool = False,
                 sync: ScorerSyncSettings | None = None) -> None:
        setup_logging("router-scoring")  # no config here: ROUTEIQ_LOG_FORMAT, pattern redaction
        configure_tracing("router-scoring")
        one_blas_thread()
        key = os.environ.get("ROUTEIQ_ROUTER_SIGNING_KEY")
        self._replica = _replica_id()
        self._metrics = RouterVersionMetrics()
        self._service, self._sync = build_scoring(specs, sync, signing_key=key.encode() if key else None,
                                                  allow_pickle=allow_pickle, replica=self._replica,
                                                  on_round=self._metrics.observe)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
    async def route(self, queries: list[RouteQuery]) -> list[RouteDecision]:
        spans = [tracer().start_span("routeiq.score", context=extract(q.trace),
                                     attributes={"routeiq.request_id": q.request_id, "router.batch_size": len(queries)})
                 for q in queries]
        try:
            return await self._service.route_batch(queries)
        finally:
            for span in spans:
                span.end()

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Serve ``user_config`` ``{"artifacts": {router: path}}``: swap artifacts without a restart.

        A refused artifact is logged with its one-line reason; the loaded router keeps serving.
        A router that follows a registry is left to it (its pointer says what it serves:
        ``routeiq promote``), else the next poll would not notice the replica serving another.
        """
        followed = {s.router for s in self._sync.syncs} if self._sync else set()
        for name, artifact in (user_config.get("artifacts") or {}).items():
            if name in followed:
                log.error("router %s follows a registry: artifact %s ignored (use routeiq promote)", name, artifact)
                continue
            try:
                self._service.reload(name, artifact)
                log.info("router %s now serves %s", name, artifact)
            except (ArtifactError, ValueError) as err:
                log.error("router %s: artifact %s refused, keeping the loaded one: %s", name, artifact, err)

    def ping(self) -> str:
        """Readiness probe of the ingress: the artifacts are loaded and warm."""
        return "ok"

    def describe(self) -> dict[str, Any]:
        """This replica's routers: what is loaded, and for registry routers the sync state."""
        return {"replica": self._replica, "routers": describe_scoring(self._service, self._sync)}

    def __del__(self) -> None:
        if (sync := getattr(self, "_sync", None)) is not None:
            sync.stop()

    def check_health(self) -> None:
        """Serve calls this periodically; loading failures already fail the constructor."""
