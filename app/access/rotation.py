"""Rotating the database and Redis credentials of a running replica (``app.credentials``).

Database: the engine's ``do_connect`` hook takes host, user and password from the URL in
use *now*, so after a rotation every new connection logs in with the new credentials. A
connection that fails with the URL in use while the secret file already holds another
value is tried with that value (the password changed on the server between the file's
update and the watcher's validation, in either order).
Each pooled connection remembers the credential generation it was opened with, and a
connection of an older generation is replaced at its next checkout (a
``DisconnectionError`` from the ``checkout`` hook: the pool reconnects that slot and
hands the caller the new connection). Connections busy at the moment finish their
transaction on the old login, which Postgres keeps valid after ``ALTER ROLE``: that is
how the old pool drains without failing a request.

Redis (``redis://``, ``rediss://``): the pool's connection settings are swapped, its idle
connections are closed, and busy ones finish their command on the old login (Redis keeps
an authenticated connection after ``ACL SETUSER``), then reconnect with the new one when
they go back to the pool. Cluster and Sentinel URLs are not
rotated live: a change is refused (reported) and takes a restart.

Validation opens one connection with the new value (``SELECT 1`` / ``PING``) and closes
it; nothing of the running pool changes unless it succeeds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.access.db import async_db_url
from app.config import GeneralSettings, resolve_secret
from app.credentials import CredentialReport, CredentialWatcher, RotatingValue, file_path
from app.secrets import secret_file
from app.store_urls import build_redis_client, parse_redis_url

GENERATION = "routeiq_credential_generation"


class EngineCredentials:
    """Makes ``engine``'s connections follow the URL in use (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, url: str, timeout_s: float,
                 latest: Callable[[], str] | None = None) -> None:
        """``latest``: the secret file's value now (may differ from the one in use until the
        watcher has validated it)."""
        self.engine = engine
        self.generation = 0
        self._timeout = timeout_s
        self._url = url
        self._url_kw = self._connect_kw(url)
        self._engine_url_kw = self._connect_kw_of(engine.url)
        self._latest = latest
        event.listen(engine.sync_engine, "do_connect", self._do_connect)
        event.listen(engine.sync_engine, "checkout", self._checkout)

    def _connect_kw_of(self, url: Any) -> dict[str, Any]:
        return dict(self.engine.dialect.create_connect_args(url)[1])

    def _connect_kw(self, url: str) -> dict[str, Any]:
        return self._connect_kw_of(make_url(async_db_url(url)))

    def _with(self, cparams: dict[str, Any], url_kw: dict[str, Any]) -> dict[str, Any]:
        params = {k: v for k, v in cparams.items() if k not in self._engine_url_kw}  # connect_args stay
        return {**params, **url_kw}

    def _do_connect(self, dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        """Connect with the URL in use; if that fails and the secret file already holds
        another value, with that one (the role's password was changed before the watcher
        validated the new file: the file is right, the value in use is not any more)."""
        record.info[GENERATION] = self.generation
        tried, kw = self._url, self._url_kw  # the watcher may apply a new value while this connects
        try:
            return dialect.connect(*cargs, **self._with(cparams, kw))
        except Exception:
            latest = self._latest() if self._latest is not None else self._url
            if latest == tried:
                raise
            try:
                other = self._connect_kw(latest)
            except Exception:  # noqa: BLE001  (a malformed new value: the first error is the news)
                other = None
            if other is None:
                raise
            return dialect.connect(*cargs, **self._with(cparams, other))

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
        self._url_kw, self._url = self._connect_kw(url), url
        self.generation += 1


class RedisRotationError(ValueError):
    """A Redis URL change this replica cannot apply live."""


class RedisCredentials:
    """Swaps a single-server Redis client's login and address (see the module docstring)."""

    def __init__(self, client: Any, url: str, timeout_s: float) -> None:
        self.client = client
        self._timeout = timeout_s
        self._live = parse_redis_url(url).kind == "single"

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
        """Under the pool's lock: new connections get the new settings, idle ones are taken
        out (closed after), busy ones take the new settings and reconnect when released.

        Reaches into redis-py's ``ConnectionPool`` (``_lock``, ``_available_connections``,
        ``_in_use_connections``; redis is pinned): closing idle connections with the public
        ``disconnect(inuse_connections=False)`` races with a task taking one of them."""
        from redis.asyncio.connection import parse_url

        pool = self.client.connection_pool
        kw = parse_url(url)
        connection_class = kw.pop("connection_class", None)
        async with pool._lock:
            if connection_class is not None:
                pool.connection_class = connection_class
            for key in ("username", "password", "db", "host", "port", "path"):
                pool.connection_kwargs.pop(key, None)
            pool.connection_kwargs.update(kw)
            idle, pool._available_connections = list(pool._available_connections), []
            for conn in pool._in_use_connections:
                for key, value in kw.items():
                    setattr(conn, key, value)  # read at its next connect only
                conn.mark_for_reconnect()  # the pool closes it when it is released
        await asyncio.gather(*(conn.disconnect() for conn in idle), return_exceptions=True)


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
        db = EngineCredentials(engine, url, settings.db_timeout_s, latest=secret_file(db_path).get)
        values.append(RotatingValue("database", db_path, url, validate=db.validate, apply=db.apply, report=report))
    redis_path = file_path(general.redis_url)
    if redis is not None and redis_path is not None:
        url = resolve_secret(general.redis_url)
        assert url is not None
        rc = RedisCredentials(redis, url, max(settings.redis_timeout_s, 2.0))
        values.append(RotatingValue("redis", redis_path, url, validate=rc.validate, apply=rc.apply, report=report))
    return CredentialWatcher(values, settings.credential_check_s)
