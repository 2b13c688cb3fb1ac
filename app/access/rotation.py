"""Rotating the database and Redis credentials of a running replica (``app.credentials``).

Database: the engine's ``do_connect`` hook takes host, user and password from the URL in
use *now*, so after a rotation every new connection logs in with the new credentials.
Each pooled connection remembers the credential generation it was opened with, and a
connection of an older generation is replaced at its next checkout (a
``DisconnectionError`` from the ``checkout`` hook: the pool reconnects that slot and
hands the caller the new connection). Connections busy at the moment finish their
transaction on the old login, which Postgres keeps valid after ``ALTER ROLE``: that is
how the old pool drains without failing a request.

Redis (``redis://``, ``rediss://``): the pool's connection settings are swapped, and its
idle connections are closed now and again at the next check; busy ones finish their
command on the old login (Redis keeps an authenticated connection after ``ACL SETUSER``)
and are replaced when the pool next drops them. Cluster and Sentinel URLs are not
rotated live: a change is refused (reported) and takes a restart.

Validation opens one connection with the new value (``SELECT 1`` / ``PING``) and closes
it; nothing of the running pool changes unless it succeeds.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.access.db import async_db_url
from app.config import GeneralSettings, resolve_secret
from app.credentials import CredentialReport, CredentialWatcher, RotatingValue, file_path
from app.store_urls import build_redis_client, parse_redis_url

GENERATION = "routeiq_credential_generation"


class EngineCredentials:
    """Makes ``engine``'s connections follow the URL in use (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, url: str, timeout_s: float) -> None:
        self.engine = engine
        self.generation = 0
        self._timeout = timeout_s
        self._url_kw = self._connect_kw(url)
        self._engine_url_kw = self._connect_kw_of(engine.url)
        event.listen(engine.sync_engine, "do_connect", self._do_connect)
        event.listen(engine.sync_engine, "checkout", self._checkout)

    def _connect_kw_of(self, url: Any) -> dict[str, Any]:
        return dict(self.engine.dialect.create_connect_args(url)[1])

    def _connect_kw(self, url: str) -> dict[str, Any]:
        return self._connect_kw_of(make_url(async_db_url(url)))

    def _do_connect(self, _dialect: Any, record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        for key in self._engine_url_kw:  # what the engine's own URL put there (connect_args stay)
            cparams.pop(key, None)
        cparams.update(self._url_kw)
        record.info[GENERATION] = self.generation

    def _checkout(self, _dbapi: Any, record: Any, _proxy: Any) -> None:
        if record.info.get(GENERATION, self.generation) != self.generation:
            raise DisconnectionError("database credentials rotated: reconnecting this pool slot")

    async def validate(self, url: str) -> None:
        """One connection with ``url`` and ``SELECT 1``; raises if either fails."""
        probe = create_async_engine(async_db_url(url), poolclass=NullPool,
                                    connect_args={"timeout": self._timeout})
        try:
            async with asyncio.timeout(self._timeout * 2), probe.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await probe.dispose()

    async def apply(self, url: str) -> None:
        self._url_kw = self._connect_kw(url)
        self.generation += 1


class RedisRotationError(ValueError):
    """A Redis URL change this replica cannot apply live."""


class RedisCredentials:
    """Swaps a single-server Redis client's login and address (see the module docstring)."""

    def __init__(self, client: Any, url: str, timeout_s: float) -> None:
        self.client = client
        self._timeout = timeout_s
        self._live = parse_redis_url(url).kind == "single"
        self._drain_again = False

    async def validate(self, url: str) -> None:
        if not self._live or parse_redis_url(url).kind != "single":
            raise RedisRotationError("only redis:// and rediss:// URLs rotate live; restart the replica")
        probe = build_redis_client(url, pool_size=1, timeout_s=self._timeout)
        try:
            async with asyncio.timeout(self._timeout * 2):
                await probe.ping()
        finally:
            await probe.aclose()

    async def apply(self, url: str) -> None:
        from redis.asyncio.connection import parse_url

        pool = self.client.connection_pool
        kw = parse_url(url)
        if "connection_class" in kw:
            pool.connection_class = kw.pop("connection_class")
        for key in ("username", "password", "db", "host", "port", "path"):
            pool.connection_kwargs.pop(key, None)
        pool.connection_kwargs.update(kw)
        await pool.disconnect(inuse_connections=False)
        self._drain_again = True

    async def drain(self) -> None:
        """Close the idle connections once more (those busy at the rotation are back by now)."""
        if self._drain_again:
            self._drain_again = False
            await self.client.connection_pool.disconnect(inuse_connections=False)


def build_rotation(general: GeneralSettings, engine: AsyncEngine | None, redis: Any | None,
                   report: CredentialReport) -> CredentialWatcher:
    """A watcher for the replica's ``file:`` datastore URLs (none rotate from ``os.environ/``
    or a literal: those are read once, at start)."""
    values: list[RotatingValue] = []
    settings = general.access
    db_path = file_path(general.database_url)
    if engine is not None and db_path is not None and engine.dialect.name == "postgresql":
        url = resolve_secret(general.database_url)
        assert url is not None
        db = EngineCredentials(engine, url, settings.db_timeout_s)
        values.append(RotatingValue("database", db_path, url, validate=db.validate, apply=db.apply, report=report))
    redis_path = file_path(general.redis_url)
    if redis is not None and redis_path is not None:
        url = resolve_secret(general.redis_url)
        assert url is not None
        rc = RedisCredentials(redis, url, max(settings.redis_timeout_s, 2.0))
        values.append(RotatingValue("redis", redis_path, url, validate=rc.validate, apply=rc.apply, report=report,
                                    tick=rc.drain))
    return CredentialWatcher(values, settings.credential_check_s)
