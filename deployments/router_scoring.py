"""Router-scoring deployment: a shell over ``RoutingService`` with request batching.

Concurrent decisions are gathered by ``@serve.batch`` so a learned router embeds
them in one forward pass. The artifact is loaded once, in the constructor.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from ray import serve

from app.logs import setup_logging
from app.tracing import configure_tracing, extract, tracer
from router_models.artifacts import ArtifactError
from router_models.inference.service import RouterSpec, RoutingService
from router_models.inference.types import RouteDecision, RouteQuery

log = logging.getLogger("routeiq.router_scoring")


class RouterScoring:
    """Routes queries for every configured router."""

    def __init__(self, specs: Sequence[RouterSpec], allow_pickle: bool = False) -> None:
        setup_logging("router-scoring")  # no config here: ROUTEIQ_LOG_FORMAT, pattern redaction
        configure_tracing("router-scoring")
        key = os.environ.get("ROUTEIQ_ROUTER_SIGNING_KEY")
        self._service = RoutingService(specs, signing_key=key.encode() if key else None, allow_pickle=allow_pickle)

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
        """
        for name, artifact in (user_config.get("artifacts") or {}).items():
            try:
                self._service.reload(name, artifact)
                log.info("router %s now serves %s", name, artifact)
            except (ArtifactError, ValueError) as err:
                log.error("router %s: artifact %s refused, keeping the loaded one: %s", name, artifact, err)

    def ping(self) -> str:
        """Readiness probe of the ingress: the artifacts are loaded and warm."""
        return "ok"

    def describe(self) -> dict[str, Any]:
        return self._service.describe()

    def check_health(self) -> None:
        """Serve calls this periodically; loading failures already fail the constructor."""
