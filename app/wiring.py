"""The one builder of a gateway: its clients, and the parts that share them.

``build_gateway`` is the composition root of an ingress replica (and of every test
that runs the gateway without Serve): it builds **one** Redis client and **one**
database engine for the replica and hands them to the access policy (limits, keys,
spend), the cooldowns and the decision log, then returns the ``Gateway``. The
gateway's ``start()``/``close()`` run everything's start-up and shutdown in order,
and ``close`` disposes the clients last. Nothing connects until ``start`` (or the
first request), so building one is cheap and never fails on a server being down.
"""

from __future__ import annotations

import os
import random
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.access import VirtualKeyPolicy, build_policy
from app.access.db import build_engine, build_redis
from app.access.decision_log import build_decision_log
from app.access.fallback import FallbackLimiter
from app.access.limits import Limiter
from app.access.local_limiter import LocalLimiter
from app.access.redis_limiter import RedisLimiter
from app.access.request_stats import RequestStats
from app.access.rotation import build_rotation
from app.access.store import AccessStore
from app.audit.service import AuditService, build_audit
from app.breaker import Breaker
from app.config import GatewayConfig
from app.config_sync import ConfigSync, GraphUpdater, SyncRecord, open_source
from app.credentials import CredentialReport, CredentialWatcher
from app.gateway.cooldowns import build_cooldowns
from app.gateway.core import Gateway, ProviderPool
from app.gateway.deployment_limits import DeploymentLimits
from app.gateway.exploration import Explorer, LocalExploreBudget, RedisExploreBudget
from app.gateway.metrics import Metrics, NoMetrics
from app.gateway.router_info import RouterInfo
from app.gateway.routing import RouterClient
from app.router_replicas import ReplicaStates


@dataclass
class Clients:
    """The replica's shared clients; ``None`` where the config needs none. Their ``file:``
    URLs are watched for rotated credentials (``app.credentials``) from ``start``."""

    redis: Any | None
    engine: AsyncEngine | None
    credentials: CredentialReport = field(default_factory=CredentialReport)
    rotation: CredentialWatcher | None = None

    @classmethod
    def for_config(cls, cfg: GatewayConfig) -> Clients:
        """Redis when configured; a database engine when keys, the decision log or the audit
        export need one."""
        general = cfg.general_settings
        needs_db = general.access.enabled or general.decisions.enabled or bool(general.audit.export_url)
        clients = cls(redis=build_redis(general), engine=build_engine(general) if needs_db else None)
        clients.rotation = build_rotation(general, clients.engine, clients.redis, clients.credentials)
        return clients

    def start(self) -> None:
        if self.rotation is not None:
            self.rotation.start()

    async def close(self) -> None:
        if self.rotation is not None:
            await self.rotation.close()
        if self.redis is not None:
            await self.redis.aclose()
        if self.engine is not None:
            await self.engine.dispose()


def build_gateway(cfg: GatewayConfig, providers: ProviderPool, router: RouterClient | None, *,
                  metrics: Metrics | None = None, clients: Clients | None = None,
                  updater: GraphUpdater | None = None, replica: str | None = None,
                  root: Path | None = None, exploration_rng: random.Random | None = None) -> Gateway:
    """A gateway for ``cfg`` whose parts share one Redis client and one engine; with
    ``general_settings.config_sync.source``, its config watcher too (``updater`` applies
    versions that change the graph; ``replica`` names this replica in the sync status)."""
    clients = clients or Clients.for_config(cfg)
    policy = build_policy(cfg, clients.engine, clients.redis)
    metrics = metrics or NoMetrics()
    clients.credentials.count = lambda store: metrics.credential_reload_error(store=store)
    if isinstance(policy, VirtualKeyPolicy):
        policy.alerts.count = metrics.soft_budget_alert
    gateway = Gateway(
        cfg, providers, router,
        policy=policy,
        cooldowns=build_cooldowns(cfg, clients.redis),
        metrics=metrics,
        decisions=build_decision_log(cfg, clients.engine),
        clients=clients,
        router_info=RouterInfo(cfg, router, _replica_states(cfg, clients.redis)),
        explorer=_explorer(cfg, clients.redis, exploration_rng),
        deployment_limits=build_deployment_limits(cfg, clients.redis),
        audit=_audit(cfg, policy, clients, metrics),
        request_stats=_request_stats(cfg, policy, clients),
    )
    if cfg.general_settings.config_sync.source:
        gateway.config_sync = build_config_sync(gateway, clients, updater=updater, replica=replica, root=root)
    return gateway


def build_config_sync(gateway: Gateway, clients: Clients, *, updater: GraphUpdater | None,
                      replica: str | None, root: Path | None) -> ConfigSync:
    """The replica's config watcher: the source, the Redis record (when there is Redis), the
    audit log (``config.apply``/``config.reject`` rows, actor ``config-sync``)."""
    cfg = gateway.cfg
    sync = cfg.general_settings.config_sync
    assert sync.source is not None
    access = cfg.general_settings.access
    record = SyncRecord(clients.redis, access.redis_prefix, sync.state_ttl_s) if clients.redis is not None else None
    policy = gateway.policy

    async def audit(action: str, target: str | None, outcome: str, detail: dict[str, Any]) -> None:
        if isinstance(policy, VirtualKeyPolicy):
            await policy.store.audit("config-sync", action, target, outcome, detail)

    return ConfigSync(cfg, open_source(sync.source, sync), gateway.reconfigure,
                      replica=replica or f"{socket.gethostname()}:{os.getpid()}", record=record,
                      metrics=gateway.metrics, audit=audit, updater=updater, root=root,
                      redis_timeout_s=max(2.0, access.redis_timeout_s * 2))


def _audit(cfg: GatewayConfig, policy: Any, clients: Clients, metrics: Metrics) -> AuditService:
    """Denial rows where the policy keeps an audit log; the export where a database holds it."""
    store, tally = (policy.store, policy.denials) if isinstance(policy, VirtualKeyPolicy) else (None, None)
    if store is None and clients.engine is not None and cfg.general_settings.audit.export_url:
        store = AccessStore(clients.engine, cfg.general_settings.access.db_timeout_s)
    return build_audit(cfg, store, tally, clients.redis, metrics, clients.credentials)


def _request_stats(cfg: GatewayConfig, policy: Any, clients: Clients) -> RequestStats | None:
    """Per-minute request counts wherever the replica has a database (the policy's store,
    sharing its breaker, when keys are on)."""
    if clients.engine is None:
        return None
    store = policy.store if isinstance(policy, VirtualKeyPolicy) else AccessStore(
        clients.engine, cfg.general_settings.access.db_timeout_s)
    return RequestStats(store)


def _explorer(cfg: GatewayConfig, redis: Any | None, rng: random.Random | None) -> Explorer:
    """Exploration per router; its daily cost caps are shared through Redis when there is one.
    ``rng``: a seeded one makes a simulation repeat (bench/learning_loop.py); else the system's."""
    budget = (RedisExploreBudget(redis, cfg.general_settings.access.redis_prefix) if redis is not None
              else LocalExploreBudget())
    return Explorer({r.name: r.exploration for r in cfg.router_settings.routers}, budget, rng)


def build_deployment_limits(cfg: GatewayConfig, redis: Any | None) -> DeploymentLimits | None:
    """Per-deployment rpm/tpm on the access limiter's machinery: Redis (global) when configured,
    else in process; ``None`` when no entry has limits and no strategy reads usage."""
    usage_based = cfg.router_settings.routing_strategy == "usage-based-routing-v2"
    limited = any(e.litellm_params.rpm or e.litellm_params.tpm for e in cfg.model_list)
    if not (usage_based or limited):
        return None
    access = cfg.general_settings.access
    limiter: Limiter = LocalLimiter()
    if redis is not None:
        limiter = FallbackLimiter(RedisLimiter(redis), LocalLimiter(), Breaker("redis-deployments"),
                                  access.redis_timeout_s)
    return DeploymentLimits(limiter, access.redis_prefix, track_all=usage_based)


def _replica_states(cfg: GatewayConfig, redis: Any | None) -> ReplicaStates | None:
    """Where scorer replicas report their registry sync state (``None`` without Redis)."""
    if redis is None:
        return None
    return ReplicaStates(redis, cfg.general_settings.access.redis_prefix, cfg.router_settings.registry.state_ttl_s)
