"""The replica's audit background work, built by ``app.wiring`` and run by the ``Gateway``.

Three loops: refused requests counted by the policy (``DenialTally``) are written as
``access.denied`` rows every ``denials_window_s`` (every replica: its own counts); on the
replica holding the audit lease, registry pointers that moved become ``router.promote``
rows (``app.audit.promotions``) and, when ``audit.export_url`` is set, the exporter
(``AuditExporter``) runs its rounds. Readiness reads ``health()``.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from typing import Any

from app.access.store import AccessStore
from app.audit.denials import DenialTally
from app.audit.exporter import AuditExporter
from app.audit.lease import Lease, LocalLease, RedisLease
from app.audit.promotions import PromotionWatcher, build_promotions
from app.background import stop
from app.config import GatewayConfig
from app.credentials import CredentialReport
from app.gateway.metrics import Metrics

log = logging.getLogger("routeiq.audit")


class AuditService:
    def __init__(self, store: AccessStore | None, tally: DenialTally | None, exporter: AuditExporter | None,
                 denials_window_s: float, *, promotions: PromotionWatcher | None = None,
                 lease: Lease | None = None, promotions_every_s: float = 10.0) -> None:
        self.store, self.tally, self.exporter = store, tally, exporter
        self.promotions = promotions
        self.lease = lease or LocalLease()
        self._window = denials_window_s
        self._promotions_every = promotions_every_s
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self._tasks:
            return
        if self.store is not None and self.tally is not None:
            self._tasks.append(asyncio.create_task(self._denials_loop(), name="audit-denials"))
        if self.promotions is not None:
            self._tasks.append(asyncio.create_task(self._promotions_loop(), name="audit-promotions"))
        if self.exporter is not None:
            self.exporter.start()

    async def _promotions_loop(self) -> None:
        assert self.promotions is not None
        while True:
            await asyncio.sleep(self._promotions_every)
            try:
                if await self.lease.hold():
                    await self.promotions.check()
            except Exception as err:  # noqa: BLE001  (database down: next poll)
                log.warning("router promotions not recorded this round (%s)", type(err).__name__)

    async def flush_denials(self) -> int:
        """Write the window's denial rows; kept for the next window if the database refuses."""
        if self.store is None or self.tally is None or not len(self.tally):
            return 0
        rows = self.tally.drain()
        for i, row in enumerate(rows):
            try:
                await self.store.audit(**row)
            except Exception as err:  # noqa: BLE001  (database down: count them again next window)
                self.tally.restore(rows[i:])
                log.warning("denial audit rows not written (%s); retrying next window", type(err).__name__)
                return i
        return len(rows)

    async def _denials_loop(self) -> None:
        while True:
            await asyncio.sleep(self._window)
            await self.flush_denials()

    async def close(self) -> None:
        await stop(*self._tasks)
        self._tasks = []
        with suppress(Exception):
            await asyncio.wait_for(self.flush_denials(), 5)
        if self.exporter is not None:
            await self.exporter.close()
        await self.lease.release()

    def health(self) -> dict[str, Any]:
        return {"audit_export": self.exporter.report()} if self.exporter is not None else {}


def build_audit(cfg: GatewayConfig, store: AccessStore | None, tally: DenialTally | None, redis: Any | None,
                metrics: Metrics, credentials: CredentialReport) -> AuditService:
    """The service for ``cfg``: denial rows when keys are on, the exporter when ``export_url`` is set."""
    settings = cfg.general_settings.audit
    lease: Lease = (RedisLease(redis, cfg.general_settings.access.redis_prefix, settings.lease_s)
                    if redis is not None else LocalLease())
    exporter = None
    if settings.export_url and store is not None:
        from app.audit.ledger import ExportLedger
        from app.audit.objects import parse_export_url
        from app.audit.sink import S3Sink
        from app.audit.spool import Spool

        exporter = AuditExporter(ExportLedger(store.engine, settings.timeout_s), Spool(settings.spool_dir),
                                 S3Sink(settings, credentials), parse_export_url(settings.export_url), settings,
                                 lease=lease, metrics=metrics)
    promotions = build_promotions(cfg, store) if store is not None else None
    return AuditService(store, tally, exporter, settings.denials_window_s, promotions=promotions, lease=lease,
                        promotions_every_s=cfg.router_settings.registry.poll_interval_s)
