"""A primary turned read-only (SQLSTATE 25006: demoted by a failover, still answering) is an
outage: the spend buffer keeps its events, the breaker opens, the pool is dropped, and once
writes are accepted again every event lands exactly once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import DBAPIError

from app.access.db import build_engine
from app.access.dberrors import is_data_error, is_read_only
from app.access.spend import SpendBuffer
from app.access.store import AccessStore, SpendEvent
from app.config import parse_config
from devtools.configs import gateway_config
from devtools.services import PostgresServer
from tests.access_support import start_service


@pytest.fixture
def two_postgres() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    """Their own servers: the test makes the first one read-only."""
    first = start_service(PostgresServer)
    second = start_service(PostgresServer)
    yield first, second
    first.close()
    second.close()


def read_only(pg: PostgresServer) -> None:
    """Demote ``pg``: every session, the pooled ones included, refuses writes from its next statement.

    ``pg_reload_conf`` only signals the postmaster. A new session seeing the setting means the
    postmaster has reloaded and signalled its children, whose next statement then applies it; without
    that wait a loaded machine let the test's next flush land on the "demoted" primary.
    """
    pg.psql("ALTER SYSTEM SET default_transaction_read_only = on")
    pg.psql("SELECT pg_reload_conf()")
    deadline = time.monotonic() + 60
    while pg.psql("SHOW default_transaction_read_only").strip() != "on":
        assert time.monotonic() < deadline, "the reload never took effect"
        time.sleep(0.05)


def rows(pg: PostgresServer, db: str, key: str) -> list[str]:
    return sorted(pg.psql(f"SELECT request_id, count(*) FROM routeiq_spend_logs WHERE key_id = '{key}' "
                          "GROUP BY request_id", db).split())


async def test_a_demoted_primary_is_an_outage_then_writes_go_to_the_new_one(
        two_postgres: tuple[PostgresServer, PostgresServer]) -> None:
    """Pooled connections to the old primary pass their pings: only dropping the pool on
    25006 sends the next connections through the URL's hosts to the writable one."""
    from app.access.migrate import upgrade

    old, new = two_postgres
    db = old.create_database()
    new.psql(f"CREATE DATABASE {db}")
    url = f"postgresql://postgres@127.0.0.1:{old.port},127.0.0.1:{new.port}/{db}?target_session_attrs=read-write"
    cfg = parse_config(gateway_config("http://127.0.0.1:9/v1", database_url=url))
    engine = build_engine(cfg.general_settings)
    store = AccessStore(engine, timeout_s=5)
    spend = SpendBuffer(store, interval_s=60)
    key = f"key_{uuid.uuid4().hex[:8]}"

    def event(i: int) -> SpendEvent:
        return SpendEvent(uuid.uuid4().hex, f"req-{i}", key, None, "tiny-model", 1, 2, 1e-6, datetime.now(UTC))

    try:
        await upgrade(engine)  # on the first host, the writable one
        for i in range(5):
            spend.add(event(i))
        assert await spend.flush()  # the pool now holds connections to the first host
        read_only(old)
        for i in range(5, 12):
            spend.add(event(i))
        assert not await spend.flush()
        assert spend.pending == 7 and not store.breaker.up
        await upgrade(engine)  # the new primary's schema (a real standby has it already)
        store.breaker.success()  # as its probe does once a writable host answers
        assert await spend.flush() and spend.pending == 0
        assert rows(old, db, key) == [f"req-{i}|1" for i in range(5)]
        assert rows(new, db, key) == sorted(f"req-{i}|1" for i in range(5, 12))
    finally:
        await engine.dispose()


def test_25006_is_an_outage_not_a_refused_value() -> None:
    class ReadOnlyError(Exception):
        sqlstate = "25006"

    err = DBAPIError("INSERT ...", {}, ReadOnlyError())
    assert is_read_only(err) and not is_data_error(err)
