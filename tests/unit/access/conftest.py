"""Policies on real backends: ``real`` (Postgres + Redis) and ``embedded`` (SQLite + in-process)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from app.access import build_policy
from app.access.admin import AccessAdmin
from app.access.policy import VirtualKeyPolicy
from app.config import parse_config
from app.wiring import Clients
from devtools.configs import gateway_config
from devtools.services import PostgresServer, RedisServer
from tests.access_support import access_general

MakePolicy = Callable[..., Awaitable[VirtualKeyPolicy]]


@pytest.fixture(scope="session")
def access_db_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A database of the session's Postgres for these tests; its URL."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(params=["real", "embedded"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_policy(backend: str, access_db_url: str, redis_server: RedisServer,
                      tmp_path: Any) -> AsyncIterator[MakePolicy]:
    """Start policies sharing one store and limiter namespace (like replicas of one app)."""
    started: list[tuple[VirtualKeyPolicy, Clients]] = []
    general = access_general(backend, str(tmp_path), database_url=access_db_url, redis_url=redis_server.url())

    async def make(**access: Any) -> VirtualKeyPolicy:
        g = {**general, "access": {**general["access"], **access}}
        cfg = parse_config(gateway_config("http://127.0.0.1:9/v1", **g))
        clients = Clients.for_config(cfg)  # each policy is one replica: its own clients
        policy = build_policy(cfg, clients.engine, clients.redis)
        assert isinstance(policy, VirtualKeyPolicy)
        await policy.start()
        started.append((policy, clients))
        return policy

    yield make
    for p, clients in started:
        await p.close()
        await clients.close()


@pytest.fixture
async def policy(make_policy: MakePolicy) -> VirtualKeyPolicy:
    return await make_policy()


@pytest.fixture
def admin(policy: VirtualKeyPolicy) -> AccessAdmin:
    return AccessAdmin(policy)
