"""Router promotions in the audit log: ``router.promote`` rows, from the registry's pointers.

A router version is promoted (or rolled back) by moving its pointer in the S3 registry,
from ``routeiq promote``, ``routeiq retrain`` or any other client, none of which need the
gateway's database. So the gateway records what it observes: the replica holding the
audit lease reads each ``s3://`` router's pointer every ``router_settings.registry``
poll and, when its ``current`` differs from the last ``router.promote`` row of that
router, appends one (actor ``registry``, target the router, detail the version, the
previous one and the pointer's own ``updated_at``). The first look at a router records
its version as well, so the trail starts with what was live. Blocking S3 reads run in a
thread; a registry that is down is retried at the next poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from app.access.store import AccessStore
from app.access.tables import audit_log

log = logging.getLogger("routeiq.audit")
ACTION = "router.promote"


class PromotionWatcher:
    def __init__(self, store: AccessStore, registries: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
        """``registries``: router name → its ``RouterRegistry``, or a function building them at
        the first check (boto3 is imported then, not when the replica's gateway is built)."""
        self.store = store
        self._registries = registries
        self._known: dict[str, str] = {}

    @property
    def registries(self) -> dict[str, Any]:
        if callable(self._registries):
            self._registries = self._registries()
        return self._registries

    async def _last_recorded(self, router: str) -> str | None:
        stmt = (select(audit_log.c.detail).where(audit_log.c.action == ACTION, audit_log.c.target == router)
                .order_by(audit_log.c.id.desc()).limit(1))
        async with self.store.engine.connect() as conn:
            detail = (await conn.execute(stmt)).scalar_one_or_none()
        return str(detail.get("version")) if isinstance(detail, dict) else None

    async def check(self) -> int:
        """Record every pointer that moved since the last row; how many rows were written."""
        written = 0
        for router, registry in self.registries.items():
            try:
                pointer = await asyncio.to_thread(registry.pointer, router)
            except Exception as err:  # noqa: BLE001  (registry down: next poll)
                log.warning("router %s: pointer not read for the audit log (%s)", router, type(err).__name__)
                continue
            if pointer is None or self._known.get(router) == pointer.current:
                continue
            if await self._last_recorded(router) != pointer.current:
                await self.store.audit("registry", ACTION, router, "success",
                                       {"version": pointer.current, "previous": pointer.previous,
                                        "pointer_updated_at": pointer.updated_at})
                written += 1
            self._known[router] = pointer.current
        return written


def build_promotions(cfg: Any, store: AccessStore) -> PromotionWatcher | None:
    """A watcher over the config's ``s3://`` routers (``None``: none follows a registry)."""
    from router_models.registry import is_registry_url, parse_registry_url

    routers = [r for r in cfg.router_settings.routers if is_registry_url(r.artifact)]
    if not routers:
        return None

    def registries() -> dict[str, Any]:
        from router_models.registry.s3 import build_s3_client
        from router_models.registry.store import RouterRegistry

        reg = cfg.router_settings.registry
        client = build_s3_client(reg.endpoint_url, reg.region, timeout_s=reg.timeout_s)
        return {r.name: RouterRegistry(client, parse_registry_url(str(r.artifact))) for r in routers}

    return PromotionWatcher(store, registries)
