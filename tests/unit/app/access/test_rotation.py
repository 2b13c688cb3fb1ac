"""Rotating the database (and Redis) credentials of a running replica, on real servers.

The Postgres role is this module's own, on the session's test server, made to log in with
its password (``PostgresServer.require_password``): ``ALTER ROLE ... PASSWORD`` then a new
secret file, as an operator (or a secret manager) would do it, while concurrent queries
run through the replica's store. No query may fail; afterwards new connections must use
the new password (the old one no longer works) and a bad value must be refused, reported
and leave the old one serving.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from app import secrets as secret_files
from app.access.migrate import upgrade
from app.access.store import AccessStore
from app.config import parse_config
from app.wiring import Clients
from devtools.configs import gateway_config
from devtools.services import PostgresServer, RedisServer


@pytest.fixture(autouse=True)
def quick_secret_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secret_files, "RECHECK_S", 0.05)
    secret_files.clear_cache()


def write_secret(path: Path, value: str) -> None:
    """Replace the file in one rename, as the kubelet swaps a mounted Secret."""
    tmp = path.with_suffix(".new")
    tmp.write_text(value + "\n")
    os.replace(tmp, path)


@pytest.fixture(scope="module")
def role_db(postgres_server: PostgresServer) -> Iterator[tuple[str, str]]:
    """A role that must give its password, owning a fresh database: (role, database)."""
    role = f"rot_{secrets.token_hex(4)}"
    postgres_server.psql(f"CREATE ROLE {role} LOGIN PASSWORD 'first-pw'")
    postgres_server.require_password(role)
    db = postgres_server.create_database()
    postgres_server.psql(f"ALTER DATABASE {db} OWNER TO {role}")
    postgres_server.psql(f"GRANT ALL ON SCHEMA public TO {role}", db)
    yield role, db
    postgres_server.drop_database(db)


def pg_url(pg: PostgresServer, role: str, password: str, db: str) -> str:
    return f"postgresql://{role}:{password}@127.0.0.1:{pg.port}/{db}"


class Recorder:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def __call__(self, store: str) -> None:
        self.errors.append(store)


@pytest.fixture
async def replica(postgres_server: PostgresServer, role_db: tuple[str, str],
                  tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    role, db = role_db
    password = f"pw-{secrets.token_hex(6)}"
    postgres_server.psql(f"ALTER ROLE {role} PASSWORD '{password}'")
    secret = tmp_path / "database_url"
    write_secret(secret, pg_url(postgres_server, role, password, db))
    cfg = parse_config(gateway_config("http://127.0.0.1:9/v1", database_url=f"file:{secret}",
                                      access={"credential_check_s": 0.1, "db_pool_size": 4}))
    clients = Clients.for_config(cfg)
    recorder = Recorder()
    clients.credentials.count = recorder
    assert clients.engine is not None
    await upgrade(clients.engine)
    clients.start()
    yield {"clients": clients, "store": AccessStore(clients.engine), "secret": secret, "role": role, "db": db,
           "errors": recorder.errors}
    await clients.close()


async def wait_for(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


class Traffic:
    """``n`` workers writing and reading through the store until stopped; every failure is kept."""

    def __init__(self, store: AccessStore, n: int) -> None:
        self.store, self.done, self.failures = store, 0, []  # type: ignore[var-annotated]
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._work(i)) for i in range(n)]

    async def _work(self, i: int) -> None:
        while not self._stop.is_set():
            try:
                await self.store.audit("rotation-test", "probe", f"w{i}", "success")
                await self.store.audit_rows(None, None, 1)
                self.done += 1
            except Exception as err:  # noqa: BLE001  (recorded: the test fails on any)
                self.failures.append(f"{err!r} <- {err.__cause__!r}")
            await asyncio.sleep(0)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def new_connection_works(store: AccessStore) -> None:
    """Drop every pooled connection and query: only the URL in use now can log in."""
    await store.engine.dispose()
    async with store.engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1


async def test_alter_role_then_a_new_secret_file_under_traffic_fails_no_query(
        replica: dict[str, Any], postgres_server: PostgresServer) -> None:
    store, role, db = replica["store"], replica["role"], replica["db"]
    report = replica["clients"].credentials
    traffic = Traffic(store, 3)
    await wait_for(lambda: traffic.done >= 20, "traffic before the rotation")
    new_pw = f"pw-{secrets.token_hex(6)}"
    postgres_server.psql(f"ALTER ROLE {role} PASSWORD '{new_pw}'")
    write_secret(replica["secret"], pg_url(postgres_server, role, new_pw, db))
    await wait_for(lambda: report.detail()["database"]["rotations"] == 1, "the rotation to be applied")
    at_rotation = traffic.done
    await wait_for(lambda: traffic.done >= at_rotation + 20, "traffic after the rotation")
    await traffic.stop()
    assert traffic.failures == []
    assert report.detail()["database"]["status"] == "ok" and replica["errors"] == []
    await new_connection_works(store)  # the old password no longer logs in: this is the new one


async def test_a_secret_written_before_alter_role_is_refused_then_taken_once_it_works(
        replica: dict[str, Any], postgres_server: PostgresServer) -> None:
    store, role, db = replica["store"], replica["role"], replica["db"]
    report = replica["clients"].credentials
    traffic = Traffic(store, 3)
    new_pw = f"pw-{secrets.token_hex(6)}"
    write_secret(replica["secret"], pg_url(postgres_server, role, new_pw, db))  # the server does not know it yet
    await wait_for(lambda: report.detail()["database"]["status"] == "stale", "the refusal to be reported")
    detail = report.detail()["database"]
    assert detail["rotations"] == 0 and detail["error"] in ("InvalidPasswordError", "StoreUnavailableError",
                                                              "OperationalError", "DBAPIError")
    assert new_pw not in str(report.detail())
    await new_connection_works(store)  # still the old password
    postgres_server.psql(f"ALTER ROLE {role} PASSWORD '{new_pw}'")
    await store.engine.dispose()  # new connections at once, before the watcher retried: the file's value logs in
    await wait_for(lambda: report.detail()["database"]["rotations"] == 1, "the retried value to be applied")
    await traffic.stop()
    assert traffic.failures == [] and replica["errors"] == ["database"]  # counted once, not per retry
    await new_connection_works(store)


async def test_a_malformed_secret_file_keeps_the_old_value_and_is_reported(replica: dict[str, Any]) -> None:
    report = replica["clients"].credentials
    replica["secret"].write_text("")
    await wait_for(lambda: report.detail()["database"]["status"] == "stale", "the bad file to be reported")
    assert "empty" in report.detail()["database"]["error"] and replica["errors"] == ["database"]
    write_secret(replica["secret"], "postgresql://not a url")
    await new_connection_works(replica["store"])
    assert report.detail()["database"]["rotations"] == 0


async def test_redis_password_rotation_under_traffic(redis_server: RedisServer, tmp_path: Path) -> None:
    import redis.asyncio as aioredis

    user, first, second = f"rot_{secrets.token_hex(4)}", secrets.token_hex(8), secrets.token_hex(8)
    admin = aioredis.from_url(redis_server.url())
    host_port = redis_server.url().split("//", 1)[1].split("/", 1)[0]

    def url(pw: str) -> str:
        return f"redis://{user}:{pw}@{host_port}/0"

    await admin.execute_command("ACL", "SETUSER", user, "on", f">{first}", "~*", "+@all")
    secret = tmp_path / "redis_url"
    write_secret(secret, url(first))
    cfg = parse_config(gateway_config("http://127.0.0.1:9/v1", redis_url=f"file:{secret}",
                                      access={"credential_check_s": 0.1, "enabled": False},
                                      decisions={"enabled": False}))
    clients = Clients.for_config(cfg)
    clients.start()
    failures: list[str] = []
    done = 0
    stop = asyncio.Event()

    async def work() -> None:
        nonlocal done
        while not stop.is_set():
            try:
                await clients.redis.incr(f"{user}:n")
                done += 1
            except Exception as err:  # noqa: BLE001  (recorded)
                failures.append(repr(err))
            await asyncio.sleep(0)

    try:
        tasks = [asyncio.create_task(work()) for _ in range(3)]
        await wait_for(lambda: done >= 20, "redis traffic")
        # Both passwords valid for the switch (Redis users may hold several), then the old one removed.
        await admin.execute_command("ACL", "SETUSER", user, f">{second}")
        write_secret(secret, url(second))
        await wait_for(lambda: (clients.credentials.detail() or {}).get("redis", {}).get("rotations") == 1,
                       "the redis rotation")
        await admin.execute_command("ACL", "SETUSER", user, f"<{first}")
        at = done
        await wait_for(lambda: done >= at + 20, "traffic after the rotation")
        stop.set()
        await asyncio.gather(*tasks)
        assert failures == []
        await clients.redis.connection_pool.disconnect()  # every connection logs in again: only the new one works
        assert await clients.redis.ping()
        write_secret(secret, url("wrong-password"))
        await wait_for(lambda: clients.credentials.detail()["redis"]["status"] == "stale", "the refusal")
        assert await clients.redis.ping()
    finally:
        stop.set()
        await clients.close()
        await admin.execute_command("ACL", "DELUSER", user)
        await admin.aclose()
