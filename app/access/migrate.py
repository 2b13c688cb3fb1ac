"""Schema migrations at replica start, safe when several replicas start at once.

Postgres: the upgrade runs under a session advisory lock, so one replica applies the
revisions while the others wait, then find the schema at head and do nothing.
SQLite: the same with an exclusive ``flock`` on a file next to the database.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("routeiq.access")
MIGRATIONS = Path(__file__).with_name("migrations")
LOCK_ID = 0x526F757465  # "Route": the advisory lock every replica takes


def _upgrade(sync_conn: Any) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


async def _upgrade_postgres(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_ID})
        try:
            await conn.run_sync(_upgrade)
            await conn.commit()
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_ID})
            await conn.commit()


async def _upgrade_sqlite(engine: AsyncEngine) -> None:
    db = engine.url.database or ""
    lock_path = Path(f"{db}.migrate.lock")
    with lock_path.open("a") as fh:
        await asyncio.to_thread(fcntl.flock, fh.fileno(), fcntl.LOCK_EX)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(_upgrade)
                await conn.commit()
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the access schema to head (idempotent)."""
    if engine.dialect.name == "postgresql":
        await _upgrade_postgres(engine)
    else:
        await _upgrade_sqlite(engine)
    log.info("access schema at head (%s)", engine.dialect.name)
