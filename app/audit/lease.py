"""One audit exporter across replicas: a lease in Redis, renewed while held.

Correctness does not depend on it (batches are planned in the database, so two exporters
would write the same objects: ``app.audit.ledger``); it keeps N replicas from doing the
same uploads N times. ``SET NX PX`` takes it; a compare-and-extend script renews it
only for its holder, so a replica that stalled past the lease cannot take it back from
the one that took over. Without Redis (embedded mode, one process) ``LocalLease``
always holds.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, Protocol

log = logging.getLogger("routeiq.audit")

_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Lease(Protocol):
    async def hold(self) -> bool:
        """Take or renew the lease; whether this replica holds it now."""
        ...

    async def release(self) -> None: ...


class LocalLease:
    async def hold(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class RedisLease:
    def __init__(self, redis: Any, prefix: str, lease_s: float) -> None:
        self._redis = redis
        self.key = f"{prefix}:{{audit-export}}:lease"
        self._token = secrets.token_hex(8)
        self._ms = int(lease_s * 1000)
        self.held = False

    async def hold(self) -> bool:
        try:
            if self.held and await self._redis.eval(_EXTEND, 1, self.key, self._token, self._ms):
                return True
            self.held = bool(await self._redis.set(self.key, self._token, nx=True, px=self._ms))
        except Exception as err:  # noqa: BLE001  (Redis down: nobody can be sure; skip this round)
            log.warning("audit export lease: Redis unavailable (%s)", type(err).__name__)
            self.held = False
        return self.held

    async def release(self) -> None:
        if self.held:
            self.held = False
            try:
                await self._redis.eval(_RELEASE, 1, self.key, self._token)
            except Exception as err:  # noqa: BLE001  (it expires on its own)
                log.warning("audit export lease not released (%s)", type(err).__name__)
