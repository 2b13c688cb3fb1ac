"""The Redis-held record of the applied config version, and each ingress replica's report.

Replicas agree through one record (``<prefix>:config:applied``): the version that passed
validation last, with its text, so a replica that has not read the source yet applies
exactly what the others did. A replica writes it only when it holds content other than
the record's (a Lua compare-and-set on the content hash: two replicas finding the same new
version write once, ``seq`` counts versions). Each replica reports what it applied into
one hash (``<prefix>:config:replicas``, a field per replica, stale fields dropped by the
reader: ``app.router_replicas.fresh_reports``, which reads the scorer replicas' states too),
and the last sync error goes to ``<prefix>:config:error`` so any replica's status shows it.

Redis errors propagate: the watcher counts them as sync errors and keeps serving.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from app.router_replicas import fresh_reports

_PUBLISH = """
if redis.call('HGET', KEYS[1], 'hash') == ARGV[1] then return 0 end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') + 1
redis.call('HSET', KEYS[1], 'hash', ARGV[1], 'seq', seq, 'body', ARGV[2])
return seq
"""
"""Compare-and-set on the content hash: a Redis hash of ``hash``, ``seq`` and the JSON ``body``."""


class SyncRecord:
    """The applied-version record, the replicas' reports and the last error, in Redis."""

    def __init__(self, redis: Any, prefix: str, ttl_s: float) -> None:
        self._redis, self._ttl = redis, ttl_s
        # One hash tag: both keys live on one slot of a Redis Cluster.
        self._applied = f"{prefix}:{{config}}:applied"
        self._replicas = f"{prefix}:{{config}}:replicas"

    async def read(self) -> dict[str, Any] | None:
        """The record (its body's fields plus ``seq``), or ``None`` before the first publish."""
        found = await self._redis.hmget(self._applied, ["seq", "body"])
        if not found or found[1] is None:
            return None
        return {**orjson.loads(found[1]), "seq": int(found[0] or 0)}

    async def publish(self, record: dict[str, Any]) -> int:
        """Write ``record`` unless its content (``hash``) is already the record's; the new ``seq``
        (0: not written). The same content under another version string (re-uploaded, or read from a
        file elsewhere) is no new version."""
        written = await self._redis.eval(_PUBLISH, 1, self._applied, str(record["hash"]), orjson.dumps(record))
        return int(written)

    async def report(self, replica: str, state: dict[str, Any]) -> None:
        await self._redis.hset(self._replicas, replica, orjson.dumps({**state, "reported_at": time.time()}))

    async def replicas(self) -> list[dict[str, Any]]:
        """Every replica that reported within the TTL (stale fields are removed)."""
        return await fresh_reports(self._redis, self._replicas, self._ttl)
