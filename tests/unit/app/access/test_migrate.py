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
        assert await _race(url) == ["0009"]
        assert await _race(url, n=2) == ["0009"]  # and again: a no-op
    finally:
        postgres_server.drop_database(db)


async def test_concurrent_upgrades_on_sqlite(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/race.db"
    assert await _race(url, connect_args={"timeout": 30}) == ["0009"]


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


def test_0005_adds_propensity_and_explored_to_decision_rows(tmp_path: Any) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/m.db")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
        conn.execute(text("INSERT INTO routeiq_decisions (request_id, created_at, key_id, router, strategy, "
                          "query_sha256, query_chars, candidates, chosen, routed_to, route_latency_ms, latency_ms, "
                          "prompt_tokens, completion_tokens, cost, status, fallback) VALUES ('r', '2026-01-01', "
                          "'k', 'auto', 'learned', 'h', 1, '{}', 'm', 'm', 1, 1, 1, 1, 0.1, 200, 0)"))
        command.upgrade(cfg, "0005")
        row = conn.execute(text("SELECT propensity, explored FROM routeiq_decisions")).one()
        assert tuple(row) == (None, 0)  # predates exploration: propensity unknown, nothing explored
        command.downgrade(cfg, "0004")
        assert {"propensity", "explored"}.isdisjoint(
            c["name"] for c in inspect(conn).get_columns("routeiq_decisions"))
    engine.dispose()


def test_0006_adds_litellms_key_fields_and_spend_user(tmp_path: Any) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/m.db")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    fields = {"user_id", "tags", "soft_budget", "max_parallel_requests", "model_max_budget", "model_rpm_limit",
              "model_tpm_limit"}
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
        assert fields <= {c["name"] for c in inspect(conn).get_columns("routeiq_keys")}
        assert "user_id" in {c["name"] for c in inspect(conn).get_columns("routeiq_spend_logs")}
        command.downgrade(cfg, "0005")
        assert fields.isdisjoint(c["name"] for c in inspect(conn).get_columns("routeiq_keys"))
        assert "user_id" not in {c["name"] for c in inspect(conn).get_columns("routeiq_spend_logs")}
    engine.dispose()
