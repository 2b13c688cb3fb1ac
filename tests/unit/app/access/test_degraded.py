"""The policy with its database gone: cached keys keep working, unknown keys get a fast 503.

The database that fails is a real one: after the key is cached from the test database,
the policy's store is pointed at a Postgres port where nothing listens (connection
refused), as a replica sees it when Postgres is stopped. No Ray.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from app.access.admin import AccessAdmin
from app.access.db import async_db_url
from app.access.keys import new_key
from app.access.limits import Demand
from app.access.policy import VirtualKeyPolicy
from app.access.store import AccessStore, StoreUnavailableError
from app.breaker import Breaker
from app.routes.health import readiness_report
from devtools.servers import free_port
from tests.unit.app.access.conftest import MakePolicy


def cut_database(policy: VirtualKeyPolicy) -> AccessStore:
    from sqlalchemy.ext.asyncio import create_async_engine

    url = async_db_url(f"postgresql://postgres@127.0.0.1:{free_port()}/gone")
    dead = AccessStore(create_async_engine(url, connect_args={"timeout": 1}), 1.0, Breaker("database", 0.2, 0.5))
    live, policy.store = policy.store, dead
    return live


class _Gateway:
    def __init__(self, policy: VirtualKeyPolicy) -> None:
        self.policy = policy

    async def health(self) -> dict[str, Any]:
        return await self.policy.health()


async def test_cached_key_outlives_its_ttl_and_unknown_keys_fail_fast(make_policy: MakePolicy) -> None:
    policy = await make_policy(key_cache_ttl_s=0.05)
    created = await AccessAdmin(policy).generate({"rpm_limit": 100}, "master")
    principal = await policy.authenticate(f"Bearer {created['key']}")
    live = cut_database(policy)
    try:
        await asyncio.sleep(0.1)  # past the TTL: the lookup fails, the cached grant is kept
        for _ in range(3):
            again = await policy.authenticate(f"Bearer {created['key']}")
            assert again.key_id == principal.key_id
            await policy.admit(again, "tiny-model", Demand(1))
        with pytest.raises(StoreUnavailableError) as err:
            await policy.authenticate(f"Bearer {new_key()}")
        assert err.value.status == 503 and err.value.headers()["retry-after"]
        start = time.perf_counter()
        with pytest.raises(StoreUnavailableError):
            await policy.authenticate(f"Bearer {new_key()}")
        assert time.perf_counter() - start < 0.01  # the breaker is open: no connect attempt
        report = await readiness_report(_Gateway(policy))  # type: ignore[arg-type]
        assert report["status"] == "degraded" and report["database"]["status"] == "down"
        assert "postgres" not in repr(report) and "127.0.0.1" not in repr(report)
    finally:
        await policy.store.close()
        await policy.store.engine.dispose()
        policy.store = live
    assert (await readiness_report(_Gateway(policy)))["status"] == "ready"  # type: ignore[arg-type]


async def test_unknown_budget_counter_starts_at_zero_while_the_database_is_down(
    make_policy: MakePolicy, backend: str
) -> None:
    policy = await make_policy(key_cache_ttl_s=60)
    created = await AccessAdmin(policy).generate({"max_budget": 1.0}, "master")
    principal = await policy.authenticate(f"Bearer {created['key']}")
    live = cut_database(policy)
    try:
        await policy.admit(principal, "tiny-model", Demand(1))  # counter unseeded, DB down: admitted
        counter = policy.scopes(principal.grant)[0].spend_key  # type: ignore[arg-type]
        assert await policy.limiter.spent(counter) == 0.0
    finally:
        await policy.store.close()
        await policy.store.engine.dispose()
        policy.store = live


async def test_readiness_probes_do_not_each_cost_a_query(make_policy: MakePolicy) -> None:
    from sqlalchemy import event

    policy = await make_policy()
    statements: list[str] = []
    event.listen(policy.store.engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, stmt, *args: statements.append(stmt))
    for _ in range(50):
        assert (await policy.health())["database"] == {"status": "up"}
    assert len(statements) <= 1  # one SELECT 1 at most (none when a query just succeeded)
