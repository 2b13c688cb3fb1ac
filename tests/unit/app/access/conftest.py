"""The access layer on real backends: ``real`` (Postgres + Redis) and ``embedded`` (SQLite +
in-process): policies (``make_policy``) and decision writers (``make_writer``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from app.access import build_policy
from app.access.admin import AccessAdmin
from app.access.decision_log import DecisionWriter, build_decision_log
from app.access.policy import VirtualKeyPolicy
from app.config import parse_config
from app.gateway.decisions import DecisionRecord
from app.wiring import Clients
from devtools.configs import gateway_config
from devtools.services import PostgresServer
from tests.access_support import access_general

MakePolicy = Callable[..., Awaitable[VirtualKeyPolicy]]


@pytest.fixture(scope="session")
def access_db_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A database of the session's Postgres for these tests; its URL."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


SHARED = ("real", "cluster", "sentinel")
"""Backends whose limits are global (Postgres + Redis: one server, a Redis Cluster, a Sentinel
master); ``embedded`` is SQLite + the in-process limiter."""
REDIS_FIXTURES = {"real": "redis_server", "cluster": "redis_cluster", "sentinel": "redis_sentinel"}


@pytest.fixture(params=["real", "embedded", "cluster", "sentinel"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_policy(backend: str, access_db_url: str, request: pytest.FixtureRequest,
                      tmp_path: Any) -> AsyncIterator[MakePolicy]:
    """Start policies sharing one store and limiter namespace (like replicas of one app)."""
    started: list[tuple[VirtualKeyPolicy, Clients]] = []
    redis = request.getfixturevalue(REDIS_FIXTURES.get(backend, "redis_server"))
    general = access_general("embedded" if backend == "embedded" else "real", str(tmp_path),
                             database_url=access_db_url, redis_url=redis.url())

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


MakeWriter = Callable[..., Awaitable[DecisionWriter]]


def record(i: int, key_id: str = "key_a", query: str = "what is 2 + 2?", **kw: Any) -> DecisionRecord:
    fields: dict[str, Any] = {
        "request_id": f"req-{i}", "created_at": time.time(), "key_id": key_id, "router": "auto",
        "strategy": "learned", "lam": 0.5, "query": query, "candidates": {"tiny-model": 0.4, "big-model": 0.9},
        "chosen": "big-model", "routed_to": "big-model", "route_latency_ms": 3.0, "latency_ms": 120.0,
        "prompt_tokens": 7, "completion_tokens": 16, "cost": 2e-5, "status": 200, **kw}
    return DecisionRecord(**fields)


@pytest.fixture(params=["embedded", "real"])
async def make_writer(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[MakeWriter]:
    backend = str(request.param)
    db, urls, pg = None, {}, None
    if backend == "real":  # the session's servers, started on first use
        pg = request.getfixturevalue("postgres_server")
        assert isinstance(pg, PostgresServer)
        db = pg.create_database()
        urls = {"database_url": pg.url(db), "redis_url": request.getfixturevalue("redis_server").url()}
    started: list[tuple[DecisionWriter, Clients]] = []

    async def make(**decisions: Any) -> DecisionWriter:
        general = access_general(backend, str(tmp_path), **urls)
        cfg = parse_config(gateway_config("http://127.0.0.1:9/v1", decisions={"flush_interval_s": 0.05,
                                                                              **decisions}, **general))
        clients = Clients.for_config(cfg)
        writer = build_decision_log(cfg, clients.engine)
        assert isinstance(writer, DecisionWriter)
        await writer.start()
        started.append((writer, clients))
        return writer

    yield make
    for w, clients in started:
        await w.close(timeout_s=2)
        await clients.close()
    if pg and db:
        pg.drop_database(db)
