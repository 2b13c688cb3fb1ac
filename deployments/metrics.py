"""``Metrics`` exported with ``ray.serve.metrics`` (Ray's Prometheus endpoint).

Names are prefixed ``routeiq_``; Ray adds ``ray_`` and the Serve tags (deployment,
replica, application). ``routeiq_active_streams`` and ``routeiq_inflight_requests``
are the gauges an external autoscaler (HPA/KEDA) can scale on; Serve's own
``ray_serve_deployment_queued_queries`` gives per-deployment queue depth.
"""

from __future__ import annotations

from typing import Any, cast

from ray.serve.metrics import Counter, Gauge, Histogram


def _keys(*names: str) -> tuple[str]:
    """Tag keys; Ray annotates ``tag_keys`` as ``tuple[str]`` (one element) but takes any number."""
    return cast("tuple[str]", names)


_LATENCY_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
_ROUTE_S = [0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5]


class ServeMetrics:
    """One set of metric objects per ingress replica."""

    def __init__(self) -> None:
        self._requests = Counter("routeiq_requests", "Requests by outcome.",
                                 tag_keys=_keys("endpoint", "model", "status", "strategy"))
        self._latency = Histogram("routeiq_request_latency_s", "Request latency (s).", _LATENCY_S,
                                  tag_keys=_keys("endpoint", "model"))
        self._ttft = Histogram("routeiq_time_to_first_token_s", "Time to first streamed byte (s).", _LATENCY_S,
                               tag_keys=_keys("model"))
        self._tokens = Counter("routeiq_tokens", "Tokens used.", tag_keys=_keys("model", "kind"))
        self._cost = Counter("routeiq_cost_usd", "Provider cost ($).", tag_keys=_keys("model"))
        self._route = Histogram("routeiq_routing_latency_s", "Routing decision latency (s).", _ROUTE_S,
                                tag_keys=_keys("router", "strategy"))
        self._routed = Counter("routeiq_routed", "Routing decisions.", tag_keys=_keys("router", "strategy", "model"))
        self._fallbacks = Counter("routeiq_fallbacks", "Fallbacks to another model.",
                                  tag_keys=_keys("from_model", "to_model"))
        self._router_fallbacks = Counter("routeiq_router_fallbacks", "Routed requests that took the router's "
                                         "fallback model, by reason.", tag_keys=_keys("router", "reason"))
        self._cooldowns = Counter("routeiq_cooldowns", "Deployments put in cooldown.", tag_keys=_keys("model"))
        self._rejected = Counter("routeiq_rejections", "Requests refused, by reason.", tag_keys=_keys("reason"))
        self._soft_budget = Counter("routeiq_soft_budget_alerts", "Keys whose spend crossed their soft budget "
                                    "(once per key and budget window).")
        self._inflight = Gauge("routeiq_inflight_requests", "Requests in flight in this ingress replica.")
        self._streams = Gauge("routeiq_active_streams", "Streams in flight in this ingress replica.")
        self._config_version = Gauge("routeiq_config_version", "Sequence number of the config version this "
                                     "ingress replica serves (the applied-version record's; docs/operations.md).")
        self._config_errors = Counter("routeiq_config_sync_errors", "Config sync rounds that failed, by reason.",
                                      tag_keys=_keys("reason",))
        self._credential_errors = Counter("routeiq_credential_reload_errors", "Rotated credentials refused "
                                          "(the previous one kept serving), by store.", tag_keys=_keys("store"))
        self._audit_lag = Gauge("routeiq_audit_export_lag_s", "Age of the oldest audit row not yet exported "
                                "to S3 (0: all exported); set by the replica holding the export lease.")
        self._audit_spool = Gauge("routeiq_audit_spool_batches", "Audit export batches spooled locally, "
                                  "waiting for S3.")
        self._audit_spool_bytes = Gauge("routeiq_audit_spool_bytes", "Bytes in the local audit export spool.")

    def request_done(self, *, endpoint: str, model: str, status: int, strategy: str, seconds: float) -> None:
        self._requests.inc(tags={"endpoint": endpoint, "model": model, "status": str(status), "strategy": strategy})
        self._latency.observe(seconds, tags={"endpoint": endpoint, "model": model})

    def first_token(self, *, model: str, seconds: float) -> None:
        self._ttft.observe(seconds, tags={"model": model})

    def usage(self, *, model: str, prompt_tokens: int, completion_tokens: int, cost: float) -> None:
        # Ray counters refuse increments <= 0 (an embedding has no completion tokens).
        if prompt_tokens > 0:
            self._tokens.inc(prompt_tokens, tags={"model": model, "kind": "prompt"})
        if completion_tokens > 0:
            self._tokens.inc(completion_tokens, tags={"model": model, "kind": "completion"})
        if cost > 0:
            self._cost.inc(cost, tags={"model": model})

    def routed(self, *, router: str, strategy: str, model: str, seconds: float) -> None:
        self._route.observe(seconds, tags={"router": router, "strategy": strategy})
        self._routed.inc(tags={"router": router, "strategy": strategy, "model": model})

    def fallback(self, *, from_model: str, to_model: str) -> None:
        self._fallbacks.inc(tags={"from_model": from_model, "to_model": to_model})

    def router_fallback(self, *, router: str, reason: str) -> None:
        self._router_fallbacks.inc(tags={"router": router, "reason": reason})

    def cooldown(self, *, model: str) -> None:
        self._cooldowns.inc(tags={"model": model})

    def rejected(self, *, reason: str) -> None:
        self._rejected.inc(tags={"reason": reason})

    def soft_budget_alert(self) -> None:
        self._soft_budget.inc()

    def load(self, *, inflight: int, active_streams: int) -> None:
        self._inflight.set(inflight)
        self._streams.set(active_streams)

    def config_version(self, *, seq: int) -> None:
        self._config_version.set(seq)

    def config_sync_error(self, *, reason: str) -> None:
        self._config_errors.inc(tags={"reason": reason})

    def credential_reload_error(self, *, store: str) -> None:
        self._credential_errors.inc(tags={"store": store})

    def audit_export(self, *, lag_s: float, spool_batches: int, spool_bytes: int) -> None:
        self._audit_lag.set(lag_s)
        self._audit_spool.set(spool_batches)
        self._audit_spool_bytes.set(spool_bytes)


class RouterVersionMetrics:
    """A scorer replica's registry routers: ``routeiq_router_version_info`` (1 for the version
    loaded, 0 for one it moved away from) and ``routeiq_router_sync_healthy`` (0 while the
    last check failed: the loaded version keeps serving, the error is on ``/router/info``)."""

    def __init__(self) -> None:
        self._info = Gauge("routeiq_router_version_info", "Router version loaded by this scorer replica (1).",
                           tag_keys=_keys("router", "version", "sha256"))
        self._healthy = Gauge("routeiq_router_sync_healthy", "1 if the router's last registry check succeeded.",
                              tag_keys=_keys("router",))
        self._shown: dict[str, tuple[str, str]] = {}

    def observe(self, states: list[Any]) -> None:
        """Called after each sync round with the ``SyncState`` of every registry router."""
        for s in states:
            if s.version and s.sha256:
                now = (s.version, s.sha256[:12])
                old = self._shown.get(s.router)
                if old is not None and old != now:
                    self._info.set(0, tags={"router": s.router, "version": old[0], "sha256": old[1]})
                self._info.set(1, tags={"router": s.router, "version": now[0], "sha256": now[1]})
                self._shown[s.router] = now
            self._healthy.set(1 if s.healthy else 0, tags={"router": s.router})
