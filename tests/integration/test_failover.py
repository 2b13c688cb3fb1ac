"""A Postgres failover under traffic: no spend lost, none counted twice.

Two ingress replicas under Serve are given a multi-host ``database_url`` (the primary,
then a streaming standby, ``target_session_attrs=read-write``): the way a Patroni pair is
reached. While requests flow, the primary is stopped and the standby promoted; the spend
buffers keep their rows through the outage and write them to the new primary, and each
answered request has exactly one spend row there (``event_id`` makes a retried batch
idempotent). The module's own Postgres pair; the session's Redis.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

from devtools.services import PostgresServer, RedisServer
from tests.access_support import access_general, start_service
from tests.integration.test_access import SMALL, App, access_config, chat, eventually


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[PostgresServer, PostgresServer, str]]:
    with contextlib.ExitStack() as stack:
        primary = start_service(PostgresServer)
        stack.callback(primary.close)
        db = primary.create_database()
        standby = primary.replica()
        stack.callback(standby.close)
        yield primary, standby, db


def spend_counts(pg: PostgresServer, db: str, key_id: str) -> dict[str, int]:
    out = pg.psql(f"SELECT request_id, count(*) FROM routeiq_spend_logs WHERE key_id = '{key_id}' "
                  "GROUP BY request_id", db)
    return {rid: int(n) for rid, _, n in (line.rpartition("|") for line in out.splitlines() if line)}


def test_a_failover_under_traffic_loses_no_spend_and_counts_none_twice(
        pair: tuple[PostgresServer, PostgresServer, str], redis_server: RedisServer,
        deploy_gateway: Callable[..., str], upstream: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    from ray import serve

    primary, standby, db = pair
    url = (f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/{db}"
           "?target_session_attrs=read-write")
    general = access_general("real", str(tmp_path_factory.mktemp("failover")), database_url=url,
                             redis_url=redis_server.url(), key_cache_ttl_s=300, db_timeout_s=2)
    overrides = {"Ingress": {**SMALL, "num_replicas": 2}, "Provider-access": SMALL, "RouterScoring": SMALL}
    base = deploy_gateway(access_config(upstream.url, general), name="failover", route_prefix="/failover",
                          overrides=overrides)
    try:
        app = App(base, "real", standby, db)
        created = app.new_key()
        client = app.client(created["key"])
        answered: list[str] = []
        # Both replicas cache the key (TTL 300 s): 16 requests miss one of two with probability 2**-15.
        answered += [chat(client, text=f"warm {i}").headers["x-request-id"] for i in range(16)]
        stop, failed = threading.Event(), []

        def traffic(worker: int) -> None:
            while not stop.is_set():
                try:
                    answered.append(chat(client, text=f"flow {worker} {uuid.uuid4().hex}").headers["x-request-id"])
                except openai.APIError as err:  # not expected: counted and reported below
                    failed.append(repr(err))

        with ThreadPoolExecutor(3) as pool:
            for w in range(3):
                pool.submit(traffic, w)
            try:
                eventually(lambda: len(answered) >= 40, timeout=120)
                before = len(answered)
                primary.stop()  # while requests flow
                standby.promote()
                after = len(answered)
                assert after > before, "no request was answered while the database switched"
                eventually(lambda: len(answered) >= after + 40, timeout=180)  # served on the new primary
            finally:
                stop.set()
        assert not failed, failed[:3]
        eventually(lambda: len(spend_counts(standby, db, created["key_id"])) >= len(answered), timeout=180)
        counts = spend_counts(standby, db, created["key_id"])
        assert set(answered) <= set(counts), "an answered request has no spend row"
        assert all(n == 1 for n in counts.values()), {r: n for r, n in counts.items() if n != 1}
        assert len(answered) == len(set(answered))
    finally:
        serve.delete("failover")
