"""Composes a scorer replica's ``RoutingService`` with the registry sync of its ``s3://`` routers.

Plain code (no Ray): ``RouterScoring`` calls ``build_scoring`` once in its constructor,
and tests call it directly. For each router whose artifact is a registry, the replica
resolves the pointer's current version (or, with the store down, the version this node
cached last) into the node's cache before the service is built, so the replica starts
serving exactly what the pointer names; then a ``SyncLoop`` follows the pointer. Paths
and ``file://`` artifacts load as before and are never polled.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from app.config import RegistrySettings, ScorerSyncSettings, resolve_secret
from app.router_replicas import RedisDownloadLock, ReplicaStates
from app.store_urls import build_redis_client
from router_models.inference.service import RoutingService
from router_models.inference.types import RouteDecision, RouteQuery, RouterSpec
from router_models.registry import is_registry_url, parse_registry_url
from router_models.registry.cache import ArtifactCache
from router_models.registry.s3 import build_s3_client
from router_models.registry.store import RouterRegistry
from router_models.registry.sync import DownloadLock, NoLock, RouterSync, SyncLoop, SyncState

NO_SYNC = ScorerSyncSettings(registry=RegistrySettings(), redis_url=None, redis_prefix="routeiq", redis_timeout_s=1.0)


def local_artifact(spec: RouterSpec) -> RouterSpec:
    """``file:///path`` as a plain path (the artifact loader reads directories)."""
    if spec.artifact and spec.artifact.startswith("file://"):
        return replace(spec, artifact=spec.artifact.removeprefix("file://"))
    return spec


class _Reloader:
    """The sync's ``load``: ``RoutingService.reload`` of one router, once the service exists."""

    def __init__(self) -> None:
        self.service: RoutingService | None = None

    def for_router(self, name: str) -> Callable[[str], None]:
        def load(path: str) -> None:
            assert self.service is not None, "the service is built before the loop polls"
            self.service.reload(name, path)

        return load


def one_blas_thread() -> None:
    """Caps numpy's BLAS at one thread in this process: a scorer replica, an ingress that scores
    (called where they build their routers, not by ``build_scoring``, which training code also calls).

    Why: a router's head is small matrix products (one query against a 5,008-row KNN bank),
    and OpenBLAS starts a spinning thread per core for each. On a 2-core machine shared
    with the other replicas that only burns CPU: a static-embedder decision cost 2.7 ms of
    CPU with the default, 1.47 with one thread, at the same wall time; with 400 decisions
    gathered into ``asyncio.to_thread`` at once, 18 ms each against 2.0 (in-process). The
    encoder has its own single thread already (ONNX Runtime's ``num_threads=1``).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def build_scoring(
    specs: Sequence[RouterSpec], sync: ScorerSyncSettings | None = None, *, signing_key: bytes | None = None,
    allow_pickle: bool = False, replica: str = "", on_round: Callable[[list[SyncState]], None] | None = None,
) -> tuple[RoutingService, SyncLoop | None]:
    """The replica's service, and the running sync loop when a router names a registry."""
    specs = [local_artifact(s) for s in specs]
    followed = [s for s in specs if is_registry_url(s.artifact)]
    if not followed:
        return RoutingService(specs, signing_key=signing_key, allow_pickle=allow_pickle), None
    settings = sync or NO_SYNC
    reg = settings.registry
    client = build_s3_client(reg.endpoint_url, reg.region, timeout_s=reg.timeout_s)
    cache = ArtifactCache(reg.cache_dir)
    redis = _redis(settings)
    lock: DownloadLock = RedisDownloadLock(redis, settings.redis_prefix, reg.lock_lease_s) if redis else NoLock()
    reloader = _Reloader()
    syncs = [RouterSync(s.name, RouterRegistry(client, parse_registry_url(str(s.artifact)), signing_key=signing_key),
                        cache, reloader.for_router(s.name), lock, node=socket.gethostname())
             for s in followed]
    reporter = None
    if redis is not None:
        states = ReplicaStates(redis, settings.redis_prefix, reg.state_ttl_s)

        async def reporter(rows: list[SyncState]) -> None:
            await states.report(replica, {s.router: s.as_dict() for s in rows})

    loop = SyncLoop(syncs, reg.poll_interval_s, jitter=reg.poll_jitter, reporter=reporter, on_round=on_round)
    try:
        paths = {s.router: loop.call(s.initial()) for s in syncs}
        service = RoutingService([replace(s, artifact=paths.get(s.name, s.artifact)) for s in specs],
                                 signing_key=signing_key, allow_pickle=allow_pickle)
    except BaseException:
        loop.stop()
        raise
    reloader.service = service
    for s in syncs:
        s.mark_loaded()
    loop.call(loop.round())  # report the first state now, not one interval later
    loop.start()
    return service, loop


def describe_scoring(service: RoutingService, sync: SyncLoop | None) -> dict[str, Any]:
    """What a replica has loaded, per router, with the sync state of the registry routers."""
    routers = service.describe()
    for state in sync.states() if sync else []:
        routers[state.router] = {**routers.get(state.router, {}), **state.as_dict()}
    return routers


class LocalScoring:
    """An ingress replica's own scorer (``scoring: ingress`` routers): the service and its sync."""

    def __init__(self, service: RoutingService, sync: SyncLoop | None) -> None:
        self.service, self.sync = service, sync

    async def route(self, query: RouteQuery) -> RouteDecision:
        return await self.service.route(query)

    def describe(self) -> dict[str, Any]:
        return describe_scoring(self.service, self.sync)

    def stop(self) -> None:
        if self.sync is not None:
            self.sync.stop()


def _redis(settings: ScorerSyncSettings) -> Any:
    """The sync's own Redis client (used only on the sync loop), or ``None``."""
    url = resolve_secret(settings.redis_url) or os.environ.get("REDIS_URL")
    if not url:
        return None
    return build_redis_client(url, pool_size=4, timeout_s=settings.redis_timeout_s)
