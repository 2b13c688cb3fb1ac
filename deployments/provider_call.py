"""Provider-call deployment: one per provider group, a shell over ``ProviderCaller``.

Bound with its group's slice of the config (``ProviderSettings``: the group, its model
entries, retry and timeout settings), never the whole config.

Streams are coalesced before they cross the handle: whatever the ingress has not yet
taken travels as one item, so a fast upstream does not cost one handle item a token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from app.config import ProviderSettings
from app.logs import setup_logging
from app.providers.base import ProviderCall, ProviderResult, StreamItem
from app.providers.caller import ProviderCaller
from app.providers.sse import coalesce
from app.tracing import configure_tracing


class ProviderDeployment:
    """Calls the models of one provider group."""

    def __init__(self, settings: ProviderSettings) -> None:
        group = settings.group.name
        setup_logging(f"provider-{group}", settings)
        configure_tracing(f"provider-{group}")
        self._caller = ProviderCaller(settings)

    def ping(self) -> str:
        """Readiness probe of the ingress: this replica is up."""
        return "ok"

    async def complete(self, call: ProviderCall) -> ProviderResult:
        return await self._caller.complete(call)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamItem]:
        async for item in coalesce(self._caller.stream(call)):
            yield item

    async def __del__(self) -> None:
        await self._caller.close()
