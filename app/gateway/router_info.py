"""``/router/info``: per router, what serves it and from where, and each scorer replica's state.

Two sources, because a DeploymentHandle call reaches one replica, not all of them: the
scorer replica that answers ``info()`` gives the loaded artifact (version, sha256, load
time, models, default λ, last sync error), and each replica's own report in Redis
(``app.router_replicas.ReplicaStates``, refreshed every poll, expiring after
``router_settings.registry.state_ttl_s``) gives the per-replica list. Without Redis the
list holds only the replica that answered (and says so). Must not: fail because the
scorer or Redis is down; the answer then says what could not be read.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from app.config import GatewayConfig
from app.gateway.catalog import ModelCatalog
from app.gateway.routing import RouterClient
from app.router_replicas import ReplicaStates
from router_models.inference.coverage import coverage
from router_models.registry.location import is_registry_url

COVERAGE_TTL_S = 30.0
"""How long readiness reuses the artifacts' model lists before asking the scorer again."""
_REPLICA_FIELDS = ("version", "sha256", "loaded_at", "healthy", "last_error", "last_error_at", "last_check_at",
                   "download")


class RouterInfo:
    """Builds the ``/router/info`` answer."""

    def __init__(self, cfg: GatewayConfig, client: RouterClient | None, states: ReplicaStates | None,
                 timeout_s: float = 2.0) -> None:
        self._cfg, self._client, self._states, self._timeout = cfg, client, states, timeout_s
        self._candidates = {name: tuple((c.name, c.profile) for c in t.candidates)
                            for name, t in ModelCatalog(cfg).routers.items()}
        self._known: dict[str, list[str]] = {}  # router → its loaded artifact's models, as last answered
        self._known_at = -COVERAGE_TTL_S

    def reconfigure(self, cfg: GatewayConfig) -> None:
        """The routers' candidates of a config applied in place."""
        self._cfg = cfg
        self._candidates = {name: tuple((c.name, c.profile) for c in t.candidates)
                            for name, t in ModelCatalog(cfg).routers.items()}

    async def coverage_detail(self) -> dict[str, Any] | None:
        """Readiness detail of the learned routers that cannot score every candidate.

        Per such router, the candidates it never picks (``unknown``) and how many it scores
        (by name or through a ``router_profile``). ``None`` when every router covers its
        candidates or the scorer has not answered yet. Detail only, never ``down``: such a
        router serves, it only falls back more. The artifacts' model lists are asked at most
        every ``COVERAGE_TTL_S`` (a registry promotion can change them)."""
        if self._client is not None and time.monotonic() - self._known_at >= COVERAGE_TTL_S:
            self._known_at = time.monotonic()  # also after a failure: a down scorer is not asked per probe
            answered, error = await self._ask_scorer()
            if error is None:
                self._remember(answered)
        out: dict[str, Any] = {}
        for name, models in self._known.items():
            found = coverage(self._candidates.get(name, ()), set(models))
            if not found.complete:
                out[name] = {"unknown": list(found.unknown), "scored": len(found.scored),
                             "via_profile": len(found.via_profile)}
        return out or None

    def _remember(self, answered: dict[str, Any]) -> None:
        routers = answered.get("routers") or {}
        self._known = {name: list(r["models"]) for name, r in routers.items() if r.get("models") is not None}
        self._known_at = time.monotonic()

    async def sync_detail(self) -> dict[str, Any] | None:
        """Readiness detail of the ``s3://`` routers: per router, the versions the replicas
        serve and how many failed their last sync (``None``: no registry router, no call).
        Detail only: a failed sync keeps the loaded version serving, so it never makes the
        ingress unready; and no error message (readiness is unauthenticated: the messages,
        with bucket and endpoint names, are on the admin-only ``/router/info``)."""
        followed = [r.name for r in self._cfg.router_settings.routers if is_registry_url(r.artifact)]
        if not followed:
            return None
        report = await self.report()
        out: dict[str, Any] = {}
        for name in followed:
            replicas = report["routers"][name]["replicas"]
            out[name] = {"versions": sorted({str(r["version"]) for r in replicas}), "replicas": len(replicas),
                         "sync_failing": sum(not r["healthy"] for r in replicas)}
        return out

    async def report(self) -> dict[str, Any]:
        answered, scorer_error = await self._ask_scorer()
        if scorer_error is None:
            self._remember(answered)
        replicas, source = await self._replicas(answered)
        routers = {r.name: self._router(r.name, answered, replicas) for r in self._cfg.router_settings.routers}
        out: dict[str, Any] = {"routers": routers, "replicas_source": source}
        if scorer_error:
            out["scorer_error"] = scorer_error
        return out

    async def _ask_scorer(self) -> tuple[dict[str, Any], str | None]:
        if self._client is None:
            return {}, None
        try:
            async with asyncio.timeout(self._timeout):
                return await self._client.info(), None
        except Exception as err:  # noqa: BLE001 - the scorer down is part of the answer, not a 500
            return {}, type(err).__name__

    async def _replicas(self, answered: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        if self._states is not None:
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._states.read(), "redis"
            except Exception as err:  # noqa: BLE001 - Redis down: fall back to the answering replica
                return [answered] if answered else [], f"answering replica only (redis: {type(err).__name__})"
        return ([answered] if answered else []), "answering replica only (no redis configured)"

    def _router(self, name: str, answered: dict[str, Any], replicas: list[dict[str, Any]]) -> dict[str, Any]:
        config = next(r for r in self._cfg.router_settings.routers if r.name == name)
        loaded = (answered.get("routers") or {}).get(name, {})
        chat = [m.model_name for m in self._cfg.model_list if m.model_info.mode == "chat"]
        return {
            "strategy": config.strategy,
            "scoring": config.scoring,
            "source": config.artifact,
            "version": loaded.get("version"),
            "sha256": loaded.get("sha256"),
            "loaded_at": loaded.get("loaded_at"),
            "artifact": loaded.get("artifact"),
            "candidate_models": list(config.candidates) or chat,
            "artifact_models": loaded.get("models"),
            "coverage": (coverage(self._candidates.get(name, ()), set(loaded["models"])).as_dict()
                         if loaded.get("models") is not None else None),
            "default_lambda": loaded.get("default_lambda", config.lam),
            "last_sync_error": loaded.get("last_error"),
            # a `scoring: ingress` router names the ingress replica that answered (``SplitRouter.info``)
            "replicas": [{"replica": (rep.get("routers") or {}).get(name, {}).get("replica", rep.get("replica")),
                          "reported_at": rep.get("reported_at"),
                          **{k: (rep.get("routers") or {}).get(name, {}).get(k) for k in _REPLICA_FIELDS}}
                         for rep in replicas if name in (rep.get("routers") or {})],
        }
