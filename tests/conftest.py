"""Session-wide fixtures: environment, the fake upstream, private Redis, Postgres and S3, the guard.

One Redis and one Postgres per session (``redis_server``, ``postgres_server``), started
on first use on free loopback ports and shared by unit and integration tests; each test
or module keeps its own database name and Redis key prefix. Tests that stop a server
(outages) start their own instead. The suite never uses the machine's own servers on
6379/5432: ``pytest_configure`` records who they are (read-only) and the session fails
if either was restarted meanwhile.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TypeVar

import pytest

# Before anything imports ray.serve or litellm: these are read at import time.
os.environ.setdefault("RAY_SERVE_THROUGHPUT_OPTIMIZED", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# moto's S3 accepts any credentials; set before Ray starts so its workers (scorer replicas) inherit them.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "routeiq-test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "routeiq-test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from devtools.s3_server import S3Server
from devtools.servers import ThreadedFakeUpstream
from devtools.services import (
    MachineServices,
    PostgresServer,
    RedisClusterServer,
    RedisSentinelServer,
    RedisServer,
    machine_services,
)
from tests.access_support import start_service

T = TypeVar("T")

MACHINE = pytest.StashKey[MachineServices]()
MACHINE_AFTER = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def upstream() -> Iterator[ThreadedFakeUpstream]:
    """The fake OpenAI-compatible upstream, shared by the session."""
    server = ThreadedFakeUpstream().start()
    yield server
    server.stop()


def _served(kind: type[T]) -> Iterator[T]:
    """A server of ``kind`` started for the session, closed when it ends."""
    server = start_service(kind)
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The session's private Redis; tests must not stop it (start a ``RedisServer`` to do that)."""
    yield from _served(RedisServer)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServer]:
    """The session's private Redis Cluster (three masters), for ``redis+cluster://``."""
    yield from _served(RedisClusterServer)


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[RedisSentinelServer]:
    """The session's private master + Sentinel, for ``redis+sentinel://``."""
    yield from _served(RedisSentinelServer)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """The session's S3-compatible server (moto, in a thread); each test makes its own bucket.
    Tests that take S3 down start their own ``S3Server``."""
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's private Postgres; tests must not stop it (start a ``PostgresServer`` to do that)."""
    yield from _served(PostgresServer)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[MACHINE] = machine_services()


def pytest_report_header(config: pytest.Config) -> str:
    m = config.stash[MACHINE]
    return f"machine's own servers (never used): redis run_id={m.redis}, postgres started={m.postgres}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    before = session.config.stash.get(MACHINE, None)
    if before is None:
        return
    after = machine_services()
    problems = before.changes(after)
    problems += [f"the machine's {name} could not be checked: {why}" for name, why in before.unchecked.items()]
    session.config.stash[MACHINE_AFTER] = problems
    if before.changes(after):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    problems = config.stash.get(MACHINE_AFTER, None)
    if problems is None:
        return
    if problems:
        for line in problems:
            terminalreporter.write_line(line, red="changed" in line, yellow="changed" not in line)
    else:
        terminalreporter.write_line("machine's own redis and postgres: untouched (same run_id and start time)")
