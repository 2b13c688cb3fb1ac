"""A synced config version that changes the graph, applied as a Serve update of this application.

``app.config_sync`` hands a validated version here when it cannot apply in place (a new
provider group, a router's artifact or strategy, store settings...). One ingress replica
does it (a Redis ``SET NX`` per config hash; without Redis each replica asks, and Serve
treats an identical second request as no change): it rebuilds the graph with
``deployments.graph.build_graph``, the only builder (injected: no import back), and submits it with
``serve.run_many`` without waiting (the submitting replica is one of those replaced). Serve
then rolls the application as in a redeploy: new replicas start with the new config, old
ones drain their in-flight streams (``graceful_shutdown_timeout_s``) and stop.

The running deployments' options (replicas, autoscaling, CPU shares, queue limits: what
a Serve config file's ``deployments:`` section or a test set) are carried over, read from
the controller's details (``get_serve_details``, a private client call: Serve has no
public read of an application's effective options). A new provider group gets the
defaults. Must not: wait for the update (that would wait for this replica's own end).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.config import GatewayConfig

log = logging.getLogger("routeiq.config_update")
CARRIED = ("ray_actor_options", "max_ongoing_requests", "max_queued_requests", "graceful_shutdown_timeout_s",
           "graceful_shutdown_wait_loop_s", "health_check_period_s", "health_check_timeout_s")
"""Deployment options kept across a config update (plus replicas or autoscaling)."""


GraphBuilder = Callable[[GatewayConfig, Path | None, dict[str, dict[str, Any]]], Any]
"""``deployments.graph.build_graph``, injected by the graph itself (this module must not import it)."""


class ServeGraphUpdater:
    """``GraphUpdater`` over Serve: rebuild and resubmit the application of the replica it runs in.

    Bound into the ingress by ``build_graph`` (picklable: the builder travels by reference);
    the application's name, route prefix and options are read in the replica at update time.
    """

    def __init__(self, build: GraphBuilder, root: Path | None = None, lease_s: float = 300.0) -> None:
        self._build, self._root, self._lease = build, root, lease_s

    async def update(self, cfg: GatewayConfig, version: str, config_hash: str) -> str:
        if not await self._first(cfg, version, config_hash):
            return "another replica started the Serve update"
        app_name = await asyncio.to_thread(self._submit, cfg)
        return f"Serve update of application {app_name!r} submitted"

    async def _first(self, cfg: GatewayConfig, version: str, config_hash: str) -> bool:
        """Whether this replica is the one to submit (a Redis ``SET NX`` per version; no Redis: yes)."""
        from app.access.db import build_redis

        redis = build_redis(cfg.general_settings)
        if redis is None:
            return True
        try:
            key = f"{cfg.general_settings.access.redis_prefix}:{{config}}:update:{config_hash}"
            return bool(await redis.set(key, version, nx=True, ex=int(self._lease)))
        finally:
            await redis.aclose()

    def _submit(self, cfg: GatewayConfig) -> str:
        from ray import serve
        from ray.serve.context import _get_global_client

        app_name = serve.get_replica_context().app_name
        client = _get_global_client()
        assert client is not None, "called from a replica: Serve's client exists"
        details = client.get_serve_details()["applications"][app_name]
        app = self._build(cfg, self._root, carried_options(details))
        serve.run_many([serve.RunTarget(app, name=app_name, route_prefix=details.get("route_prefix"))],
                       wait_for_ingress_deployment_creation=False, wait_for_applications_running=False)
        log.info("config update: application %s resubmitted", app_name)
        return str(app_name)


def carried_options(details: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per deployment name, the options of the running application worth keeping."""
    out: dict[str, dict[str, Any]] = {}
    for name, deployment in (details.get("deployments") or {}).items():
        config = deployment.get("deployment_config") or {}
        options = {k: config[k] for k in CARRIED if config.get(k) is not None}
        if isinstance(actor := options.get("ray_actor_options"), dict):
            # the config's environment_variables are applied afresh by build_graph
            options["ray_actor_options"] = {k: v for k, v in actor.items() if k != "runtime_env"}
        if config.get("autoscaling_config"):
            options["autoscaling_config"] = config["autoscaling_config"]
        elif isinstance(config.get("num_replicas"), int):
            options["num_replicas"] = config["num_replicas"]
        out[name] = options
    return out
