"""Migrations at start are safe when several replicas start at once."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.access.db import async_db_url
from app.access.migrate import upgrade
from tests.access_support import create_database, drop_database, pg_url, require_services


async def _race(url: str, n: int = 4, **kw: Any) -> list[str]:
    engines = [create_async_engine(url, **kw) for _ in range(n)]
    try:
        await asyncio.gather(*(upgrade(e) for e in engines))
        async with engines[0].connect() as conn:
            return [r[0] for r in await conn.execute(text("SELECT version_num FROM routeiq_access_schema_version"))]
    finally:
        for e in engines:
            await e.dispose()


async def test_concurrent_upgrades_on_postgres() -> None:
    require_services()
    db = create_database()
    try:
        assert await _race(async_db_url(pg_url(db))) == ["0002"]
        assert await _race(async_db_url(pg_url(db)), n=2) == ["0002"]  # and again: a no-op
    finally:
        drop_database(db)


async def test_concurrent_upgrades_on_sqlite(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/race.db"
    assert await _race(url, connect_args={"timeout": 30}) == ["0002"]


def test_url_forms() -> None:
    assert async_db_url("postgresql://u:p@h:5432/db?sslmode=require") == "postgresql+asyncpg://u:p@h:5432/db?ssl=require"
    assert async_db_url("postgres://h/db").startswith("postgresql+asyncpg://")
    assert async_db_url("sqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"
