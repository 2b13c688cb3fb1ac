"""Migrations at start are safe when several replicas start at once."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.access.db import async_db_url
from app.access.migrate import upgrade
from devtools.services import PostgresServer


async def _race(url: str, n: int = 4, **kw: Any) -> list[str]:
    engines = [create_async_engine(url, **kw) for _ in range(n)]
    try:
        await asyncio.gather(*(upgrade(e) for e in engines))
        async with engines[0].connect() as conn:
            return [r[0] for r in await conn.execute(text("SELECT version_num FROM routeiq_access_schema_version"))]
    finally:
        for e in engines:
            await e.dispose()


async def test_concurrent_upgrades_on_postgres(postgres_server: PostgresServer) -> None:
    db = postgres_server.create_database()
    url = async_db_url(postgres_server.url(db))
    try:
        assert await _race(url) == ["0003"]
        assert await _race(url, n=2) == ["0003"]  # and again: a no-op
    finally:
        postgres_server.drop_database(db)


async def test_concurrent_upgrades_on_sqlite(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/race.db"
    assert await _race(url, connect_args={"timeout": 30}) == ["0003"]


def test_url_forms() -> None:
    assert async_db_url("postgresql://u:p@h:5432/db?sslmode=require") == "postgresql+asyncpg://u:p@h:5432/db?ssl=require"
    assert async_db_url("postgres://h/db").startswith("postgresql+asyncpg://")
    assert async_db_url("sqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"
