"""An in-process ``ProviderPool``: one ``ProviderCaller`` per group, no Ray.

Used by unit tests and by anything that runs the gateway in a single process;
``transport=`` reaches every caller (a test's ``MockTransport``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from app.config import GatewayConfig
from app.providers.base import ProviderCall, ProviderClient, ProviderResult, StreamItem
from app.providers.caller import ProviderCaller


class LocalProviderPool:
    def __init__(self, cfg: GatewayConfig, transport: ProviderClient | None = None) -> None:
        self._callers = {g.name: ProviderCaller(cfg.provider_settings(g.name), transport) for g in cfg.groups()}

    async def complete(self, group: str, call: ProviderCall) -> ProviderResult:
        return await self._callers[group].complete(call)

    def stream(self, group: str, call: ProviderCall) -> AsyncIterator[StreamItem]:
        return self._callers[group].stream(call)

    async def close(self) -> None:
        for caller in self._callers.values():
            await caller.close()
