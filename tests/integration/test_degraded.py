"""Degraded mode end to end: a real Redis and a real Postgres stopped mid-run under Serve.

Two ingress replicas on Redis + Postgres, called with the openai SDK. The module starts
its own Redis and Postgres (never the session's, never the machine's): each test stops
one of them for a few seconds and restarts it in ``finally`` on the same port, waiting
until it answers. docs/operations.md "Degraded mode" is the policy under test.
"""

from __future__ import annotations

import contextlib
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

from app.access.keys import new_key
from devtools.services import PostgresServer, RedisServer
from tests.access_support import access_general, start_service
from tests.integration.test_access import SMALL, App, access_config, chat, eventually


class Degraded(App):
    """The app and its own servers, which the tests stop and restart."""

    def __init__(self, url: str, pg: PostgresServer, db: str, redis: RedisServer) -> None:
        super().__init__(url, "real", pg, db)
        self.pg: PostgresServer = pg
        self.redis = redis


@pytest.fixture(scope="module")
def app(deploy_gateway: Callable[..., str], upstream: Any,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Degraded]:
    from ray import serve

    with contextlib.ExitStack() as stack:
        pg = start_service(PostgresServer)
        stack.callback(pg.close)
        redis = start_service(RedisServer)
        stack.callback(redis.close)
        db = pg.create_database()
        general = access_general("real", str(tmp_path_factory.mktemp("degraded")), database_url=pg.url(db),
                                 redis_url=redis.url(), key_cache_ttl_s=1)
        overrides = {"Ingress": {**SMALL, "num_replicas": 2}, "Provider-access": SMALL, "RouterScoring": SMALL}
        url = deploy_gateway(access_config(upstream.url, general), name="degraded", route_prefix="/degraded",
                             overrides=overrides)
        yield Degraded(url, pg, db, redis)
        serve.delete("degraded")


def readiness(app: App) -> tuple[int, dict[str, Any]]:
    """Status and detail; the graph part (every deployment answering) is checked here."""
    resp = app.http.get("/health/readiness")
    body = resp.json()
    graph = body.pop("graph", {})
    assert graph and set(graph.values()) == {"up"}, graph
    return resp.status_code, body


def all_ready(app: App) -> bool:
    """Readiness is per replica and Serve picks one at random: ask until both have said it."""
    return all(readiness(app) == (200, {"status": "ready", "redis": {"status": "up"},
                                       "database": {"status": "up"}, "spend_buffer": 0,
                                       "router_scoring": {"status": "up"}}) for _ in range(8))


def timed_chats(client: openai.OpenAI, n: int, tag: str) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        chat(client, text=f"{tag} {i}")
        out.append((time.perf_counter() - start) * 1000)
    return out


def burst(app: App, key: str, n: int = 24) -> int:
    clients = [app.client(key), app.client(key)]

    def one(i: int) -> bool:
        try:
            chat(clients[i % 2], text=f"burst {i}")
            return True
        except openai.RateLimitError:
            return False

    with ThreadPoolExecutor(12) as pool:
        return sum(pool.map(one, range(n)))


def test_liveliness_and_readiness_are_public_and_hold_no_secrets(app: App) -> None:
    live = app.http.get("/health/liveliness")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    eventually(lambda: all_ready(app), timeout=120)
    body = app.http.get("/health/readiness").text
    assert "postgres" not in body and "redis://" not in body and "sk-" not in body


def test_redis_outage_serves_with_local_limits_then_limits_are_global_again(app: Degraded) -> None:
    client = app.client(app.new_key(rpm_limit=1000)["key"])
    before = timed_chats(client, 12, "before")
    seen: list[dict[str, Any]] = []
    try:
        app.redis.stop()  # SIGTERM; with --save "" it keeps nothing, like SHUTDOWN NOSAVE
        during = timed_chats(client, 12, "redis down")  # every one succeeds (chat raises otherwise)

        def redis_down() -> bool:
            status, body = readiness(app)
            seen.append(body)
            return status == 200 and body.get("redis", {}).get("status") == "down"

        eventually(redis_down, timeout=60)
    finally:
        app.redis.start()  # same port; waits until it answers PING
    body = seen[-1]
    assert body["status"] == "degraded" and body["database"] == {"status": "up"}
    assert body["redis"]["error"] and body["redis"]["since"]
    print(f"\nchat p50 ms: redis up {statistics.median(before):.1f}, redis down {statistics.median(during):.1f}")
    eventually(lambda: all_ready(app), timeout=120)
    assert burst(app, app.new_key(rpm_limit=6)["key"]) == 6  # one global window across both replicas


def _spend_rows(app: App, key_id: str) -> int:
    """How many spend rows; -1 while the API answers 503 (the database breaker is still open)."""
    resp = app.admin("GET", "/spend/logs", params={"key_id": key_id, "size": 1000})
    return len(resp.json()["data"]) if resp.status_code == 200 else -1


WARM = 16


def test_postgres_outage_serves_cached_keys_and_loses_no_spend(app: Degraded) -> None:
    created = app.new_key(max_budget=100)
    client = app.client(created["key"])
    # Both replicas must cache the key (TTL 1 s) and seed its budget counter. Serve picks a
    # replica at random: 16 requests miss one of two with probability 2**-15.
    for i in range(WARM):
        chat(client, text=f"warm {i}")
    seen: list[dict[str, Any]] = []
    try:
        app.pg.stop()
        time.sleep(1.2)  # past the cache TTL: the cached record must outlive it
        for i in range(8):
            chat(client, text=f"pg down {i} {uuid.uuid4().hex}")
        with pytest.raises(openai.InternalServerError) as err:
            chat(app.client(new_key()))  # key-shaped, unknown here, unverifiable: 503
        assert err.value.status_code == 503 and err.value.response.headers.get("retry-after")

        def db_down() -> bool:
            status, body = readiness(app)
            seen.append(body)
            return status == 200 and body.get("database", {}).get("status") == "down"

        eventually(db_down, timeout=60)
    finally:
        app.pg.start()  # same port; waits until pg_isready says yes
    down = [b for b in seen if b.get("database", {}).get("status") == "down"]
    assert down[-1]["status"] == "degraded" and down[-1]["redis"] == {"status": "up"}
    assert max(b["spend_buffer"] for b in down) > 0
    eventually(lambda: _spend_rows(app, created["key_id"]) == WARM + 8, timeout=120)
    eventually(lambda: all_ready(app), timeout=120)
