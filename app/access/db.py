"""Database and Redis clients of the access layer, built once per replica from config.

URLs are the standard forms (``postgresql://user:pw@host:5432/db?sslmode=require``, or
several hosts: ``postgresql://user:pw@h1:5432,h2:5432/db?target_session_attrs=read-write``;
Redis's in ``app.store_urls``); this module maps them to the async drivers (asyncpg,
aiosqlite) and sizes the pools per replica. Nothing connects
here: the first query or command does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.access.dberrors import is_read_only
from app.config import AccessSettings, ConfigError, GeneralSettings, resolve_secret
from app.store_urls import DatabaseUrlError, RedisUrlError, build_redis_client, check_database_url, pg_multi_host


def database_url(general: GeneralSettings) -> str | None:
    """The configured Postgres URL (config, else ``DATABASE_URL``); ``None``: embedded."""
    return resolve_secret(general.database_url) or os.environ.get("DATABASE_URL") or None


def redis_url(general: GeneralSettings) -> str | None:
    """The configured Redis URL (config, else ``REDIS_URL``); ``None``: in-process limits."""
    return resolve_secret(general.redis_url) or os.environ.get("REDIS_URL") or None


def async_db_url(url: str) -> str:
    """``postgresql://`` → asyncpg (``sslmode`` becomes asyncpg's ``ssl``); sqlite → aiosqlite."""
    try:
        parsed = make_url(pg_multi_host(check_database_url(url)))
    except (DatabaseUrlError, ArgumentError) as err:  # from DATABASE_URL or a reference: not seen at load
        raise ConfigError(f"general_settings.database_url: {err}") from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        query = dict(parsed.query)
        if "sslmode" in query:
            query["ssl"] = query.pop("sslmode")
        parsed = parsed.set(drivername="postgresql+asyncpg", query=query)
    elif backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    else:
        raise ValueError(f"database_url: unsupported scheme {backend!r} (postgresql:// or sqlite:///)")
    return parsed.render_as_string(hide_password=False)


def sqlite_url(settings: AccessSettings) -> str:
    path = Path(settings.sqlite_path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{path}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never wait for the spend writer
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def build_engine(general: GeneralSettings) -> AsyncEngine:
    """The replica's engine: Postgres when configured, else the embedded SQLite file."""
    settings = general.access
    url = database_url(general)
    if url is None:
        engine = create_async_engine(sqlite_url(settings), connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    url = async_db_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=settings.db_timeout_s,
        pool_pre_ping=True,  # a restarted Postgres leaves dead connections in the pool
        connect_args={"timeout": settings.db_timeout_s, "command_timeout": settings.db_timeout_s * 2},
    )
    event.listen(engine.sync_engine, "handle_error", _read_only_is_a_disconnect)
    return engine


def _read_only_is_a_disconnect(context: Any) -> None:
    """A write refused by a read-only server (SQLSTATE 25006: an old primary after a
    failover, still answering) drops the pool like a lost connection: the pings that keep
    a pool healthy pass on a read-only server, so without this every pooled connection
    would keep writing to the old primary. New connections go through the URL's hosts
    again (``target_session_attrs=read-write`` skips a read-only one)."""
    if is_read_only(context.original_exception):
        context.is_disconnect = True


def build_redis(general: GeneralSettings) -> Any:
    """The replica's Redis client (``app.store_urls``: one server, a cluster or a Sentinel
    master) with a per-replica pool, or ``None`` (in-process limits)."""
    url = redis_url(general)
    if url is None:
        return None
    settings = general.access
    try:
        return build_redis_client(url, pool_size=settings.redis_pool_size, timeout_s=settings.redis_timeout_s)
    except RedisUrlError as err:  # from REDIS_URL or a reference: config load could not see it
        raise ConfigError(f"general_settings.redis_url: {err}") from None
