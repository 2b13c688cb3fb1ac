"""Policies on real backends: ``real`` (Postgres + Redis) and ``embedded`` (SQLite + in-process)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from app.access import build_policy
from app.access.admin import AccessAdmin
from app.access.policy import VirtualKeyPolicy
from app.config import parse_config
from devtools.configs import gateway_config
from tests.access_support import access_general, create_database, drop_database, require_services

MakePolicy = Callable[..., Awaitable[VirtualKeyPolicy]]


@pytest.fixture(scope="session")
def access_db() -> Iterator[str]:
    require_services()
    name = create_database()
    yield name
    drop_database(name)


@pytest.fixture(params=["real", "embedded"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_policy(backend: str, access_db: str, tmp_path: Any) -> AsyncIterator[MakePolicy]:
    """Start policies sharing one store and limiter namespace (like replicas of one app)."""
    started: list[VirtualKeyPolicy] = []
    general = access_general(backend, access_db, str(tmp_path))

    async def make(**access: Any) -> VirtualKeyPolicy:
        g = {**general, "access": {**general["access"], **access}}
        policy = build_policy(parse_config(gateway_config("http://127.0.0.1:9/v1", **g)))
        assert isinstance(policy, VirtualKeyPolicy)
        await policy.start()
        started.append(policy)
        return policy

    yield make
    for p in started:
        await p.close()


@pytest.fixture
async def policy(make_policy: MakePolicy) -> VirtualKeyPolicy:
    return await make_policy()


@pytest.fixture
def admin(policy: VirtualKeyPolicy) -> AccessAdmin:
    return AccessAdmin(policy)
