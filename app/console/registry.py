"""The console's view of the router registry: versions per ``s3://`` router, promote, rollback.

The same ``RouterRegistry`` operations as ``routeiq promote``/``rollback``
(``router_models.registry``): the console moves the pointer, and every scorer replica loads
the version at its next poll, exactly as after the CLI. boto3 is synchronous, so each call
runs in a worker thread; its errors (a refused version, a pointer moved by someone else, S3
down) become one-line 400/503 answers here. Must not: build an S3 client per request for a
router that follows no registry (routers with local artifacts have no panel).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import asdict
from typing import Any

from app.config import GatewayConfig
from app.errors import InvalidRequestError, NotFoundError, OverloadedError
from router_models.registry.location import is_registry_url

VERSIONS_SHOWN = 20


class RegistryPanel:
    """Registry reads and pointer moves for the routers whose artifact is an ``s3://`` URL."""

    def __init__(self, cfg: GatewayConfig) -> None:
        self._cfg = cfg
        self.urls = {r.name: str(r.artifact) for r in cfg.router_settings.routers if is_registry_url(r.artifact)}

    def _registry(self, router: str) -> Any:
        from router_models.registry.location import parse_registry_url
        from router_models.registry.s3 import build_s3_client
        from router_models.registry.store import RouterRegistry

        if router not in self.urls:
            raise NotFoundError(f"router `{router}` follows no registry", param="router", code="router_not_found")
        reg = self._cfg.router_settings.registry
        key = os.environ.get("ROUTEIQ_ROUTER_SIGNING_KEY")
        client = build_s3_client(reg.endpoint_url, reg.region, timeout_s=reg.timeout_s)
        return RouterRegistry(client, parse_registry_url(self.urls[router]), signing_key=key.encode() if key else None)

    async def _run(self, router: str, action: str, *args: str) -> Any:
        from router_models.registry.errors import RegistryError

        registry = self._registry(router)
        try:
            return await asyncio.to_thread(getattr(registry, action), *args)
        except RegistryError as err:
            message = str(err).splitlines()[0]
            unreachable = any(w in message.lower() for w in ("could not connect", "timed out", "unreachable"))
            raise (OverloadedError(message, retry_after=5) if unreachable else InvalidRequestError(message)) from None

    async def describe(self, router: str) -> dict[str, Any]:
        """The router's pointer and its newest published versions (with their eval)."""
        pointer = await self._run(router, "pointer", router)
        versions = await self._run(router, "versions")
        rows = [{k: v for k, v in asdict(info).items() if k in ("version", "created_at", "sha256", "eval",
                                                                 "default_lambda", "router_type")}
                for info in versions[-VERSIONS_SHOWN:][::-1]]
        return {"url": self.urls[router], "current": pointer.current if pointer else None,
                "previous": pointer.previous if pointer else None, "versions": rows}

    async def promote(self, router: str, version: str) -> dict[str, Any]:
        pointer = await self._run(router, "promote", router, version)
        return {"router": router, "current": pointer.current, "previous": pointer.previous}

    async def rollback(self, router: str) -> dict[str, Any]:
        pointer = await self._run(router, "rollback", router)
        return {"router": router, "current": pointer.current, "previous": pointer.previous}
