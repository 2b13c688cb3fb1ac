"""The soft-budget alert hook: a key's spend crossed its ``soft_budget`` in this budget window.

LiteLLM proxy alerts (Slack, email) when a key passes its ``soft_budget`` and keeps serving
it. RouteIQ's hook is a log line (``routeiq.access.alerts``, WARNING), a metric
(``routeiq_soft_budget_alerts``) and, when ``access.soft_budget_webhook_url`` is set, a JSON
POST to it. It fires once per key and budget window across all replicas: the first replica
to see the crossing claims it with one ``SET NX`` in the limiter (``Limiter.claim``).

Must not: delay or fail a request (it runs in the settlement's background task, and a
webhook that fails or hangs is logged and dropped after ``WEBHOOK_TIMEOUT_S``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp

log = logging.getLogger("routeiq.access.alerts")
WEBHOOK_TIMEOUT_S = 5.0


class SoftBudgetAlerts:
    """Fires the alert; who decides *when* is ``VirtualKeyPolicy`` (after a charge)."""

    def __init__(self, webhook_url: str | None = None, count: Callable[[], None] | None = None) -> None:
        self.webhook_url = webhook_url
        self.count: Callable[[], None] = count or (lambda: None)
        """The metric (``Metrics.soft_budget_alert``); the wiring plugs it in."""
        self.fired: list[dict[str, Any]] = []
        """The last alerts of this replica (bounded), for tests and debugging."""

    async def fire(self, key_id: str, user_id: str | None, spend: float, soft_budget: float,
                   reset_at: float | None) -> None:
        event = {"event": "soft_budget_crossed", "key_id": key_id, "user_id": user_id, "spend": spend,
                 "soft_budget": soft_budget,
                 "budget_reset_at": datetime.fromtimestamp(reset_at, UTC).isoformat() if reset_at else None}
        log.warning("key %s crossed its soft budget: spent $%.6g of $%.6g this budget window", key_id, spend,
                    soft_budget)
        self.count()
        self.fired = [*self.fired[-99:], event]
        if self.webhook_url:
            await self._post(event)

    async def _post(self, event: dict[str, Any]) -> None:
        assert self.webhook_url is not None
        try:
            async with asyncio.timeout(WEBHOOK_TIMEOUT_S), aiohttp.ClientSession() as session, \
                    session.post(self.webhook_url, json=event) as resp:
                if resp.status >= 400:
                    log.warning("soft budget webhook answered %d", resp.status)
        except Exception as err:  # noqa: BLE001  (an alert must never fail a request)
            log.warning("soft budget webhook failed: %s", type(err).__name__)
