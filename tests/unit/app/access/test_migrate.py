"""Migrations at start are safe when several replicas start at once."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.access.db import async_db_url
from app.access.migrate import MIGRATIONS, upgrade
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
        assert await _race(url) == ["0005"]
        assert await _race(url, n=2) == ["0005"]  # and again: a no-op
    finally:
        postgres_server.drop_database(db)


async def test_concurrent_upgrades_on_sqlite(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/race.db"
    assert await _race(url, connect_args={"timeout": 30}) == ["0005"]


def test_url_forms() -> None:
    assert async_db_url("postgresql://u:p@h:5432/db?sslmode=require") == "postgresql+asyncpg://u:p@h:5432/db?ssl=require"
    assert async_db_url("postgres://h/db").startswith("postgresql+asyncpg://")
    assert async_db_url("sqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"


def test_0004_marks_existing_spend_and_decision_rows_as_counted(tmp_path: Any) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/m.db")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        conn.execute(text("INSERT INTO routeiq_spend_logs (event_id, request_id, key_id, model, prompt_tokens, "
                          "completion_tokens, total_tokens, cost, created_at) "
                          "VALUES ('e', 'r', 'k', 'm', 1, 2, 3, 0.1, '2026-01-01')"))
        command.upgrade(cfg, "0004")
        assert conn.execute(text("SELECT usage_estimated FROM routeiq_spend_logs")).scalar_one() == 0
        assert "usage_estimated" in {c["name"] for c in inspect(conn).get_columns("routeiq_decisions")}
        command.downgrade(cfg, "0003")
        for table in ("routeiq_spend_logs", "routeiq_decisions"):
            assert "usage_estimated" not in {c["name"] for c in inspect(conn).get_columns(table)}
    engine.dispose()
