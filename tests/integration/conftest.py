"""One Ray instance and one Serve HTTP port for the whole session.

Starting Ray costs ~10 s, so every integration test shares it. Tests deploy gateway
applications with ``deploy_gateway(config, name=..., route_prefix=...)``; several
applications can live side by side under different route prefixes. What a module deployed
is deleted when the module ends (``_module_apps_deleted``); only the session's main gateway
(``gateway_url``, app ``routeiq``) lives for the whole session.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devtools.configs import gateway_config
from devtools.servers import free_port
from tests.integration.gateway_app import with_patient_routers

DeployGateway = Callable[..., str]
METRICS_PORT = free_port()
"""Ray exports every process's metrics (ray.serve.metrics included) here, for Prometheus."""


@pytest.fixture(scope="session")
def serve_port() -> Iterator[int]:
    import ray
    from ray import serve

    port = free_port()
    # Serve keeps a deleted or replaced ingress replica draining for at least 30 s (Ray 2.60's
    # RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S) so that external load balancers notice;
    # tests have none, and each module's serve.delete waited ~31 s for it. In-flight requests
    # still finish (graceful_shutdown_timeout_s). Read by the controller, which inherits it.
    os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "2")
    # Logical CPUs: several test apps (0.25 CPU a replica) share the 2 real cores. address="local":
    # always a private Ray, never one a stale /tmp/ray/ray_current_cluster points at.
    ray.init(address="local", num_cpus=16, include_dashboard=False, log_to_driver=False, configure_logging=False,
             _metrics_export_port=METRICS_PORT)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield port
    with contextlib.suppress(RuntimeError):  # a test's handle is bound to pytest's closed loop
        serve.shutdown()
    ray.shutdown()


SESSION_APP = "routeiq"
"""The one app every module may share (``gateway_url``)."""


@pytest.fixture(scope="module", autouse=True)
def _module_apps_deleted() -> Iterator[None]:
    """After each module, delete the Serve apps it left (all but ``SESSION_APP``).

    Why: a module's app idles at a few hundredths of a core per replica and holds its memory
    (ONNX Runtime, the scorer's router) until the session ends: six modules' apps were seen
    resident together in a CI run whose load average stood at 11-14 (its tests took 42 min,
    against 26 the day before), the unit tests after them included.
    """
    yield
    import ray

    if not ray.is_initialized():
        return
    from ray import serve

    for name in list(serve.status().applications):
        if name != SESSION_APP:
            with contextlib.suppress(Exception):  # a failed delete only leaves the app running, as before
                serve.delete(name)


@pytest.fixture(scope="session")
def deploy_gateway(serve_port: int) -> DeployGateway:
    """Deploy a gateway app from a config dict; returns its OpenAI base URL (``.../v1``)."""
    from ray import serve

    from app.config import parse_config
    from deployments.graph import build_graph

    def deploy(config: dict[str, Any], *, name: str = SESSION_APP, route_prefix: str = "/",
               overrides: dict[str, dict[str, Any]] | None = None) -> str:
        app = build_graph(parse_config(with_patient_routers(config)), overrides=overrides)
        serve.run(app, name=name, route_prefix=route_prefix)
        prefix = route_prefix.rstrip("/")
        return f"http://127.0.0.1:{serve_port}{prefix}/v1"

    return deploy


@pytest.fixture(scope="session")
def gateway_url(deploy_gateway: DeployGateway, upstream: Any) -> str:
    """The main test gateway (devtools.configs.gateway_config) at route prefix ``/``."""
    return deploy_gateway(gateway_config(upstream.url))
