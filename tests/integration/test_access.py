"""Keys, limits, budgets and spend end to end: the openai SDK → Serve → fake upstream.

The same tests run three times: ``real`` (Postgres + Redis, two ingress replicas),
``cluster`` (the same on a three-master Redis Cluster) and ``embedded`` (SQLite +
in-process limiter, one replica: the limiter is per process).
"""

from __future__ import annotations

import contextlib
import glob
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import openai
import pytest

from devtools.configs import CHEAP, MASTER_KEY, MID
from devtools.services import PostgresServer
from tests.access_support import access_general, start_service

SMALL = {"ray_actor_options": {"num_cpus": 0.05}}


def access_config(upstream: str, general: dict[str, Any]) -> dict[str, Any]:
    def entry(name: str, price: float) -> dict[str, Any]:
        return {"model_name": name, "provider_group": "access",
                "litellm_params": {"model": f"openai/{name}", "api_base": upstream, "api_key": "sk-up"},
                "model_info": {"input_cost_per_token": price / 1e6, "output_cost_per_token": price / 1e6}}

    return {
        "model_list": [entry(CHEAP, 0.1), entry(MID, 0.5)],
        "router_settings": {
            "routers": [
                {"name": "auto", "strategy": "cost-first", "scoring": "replica"},
                # a deadline no scorer meets (through the hop): every request takes the router's fallback
                {"name": "hurried", "strategy": "cost-first", "timeout_ms": 0.001, "fallback_model": MID,
                 "scoring": "replica"},
            ],
            "num_retries": 0, "allowed_fails": 3, "cooldown_time_s": 60,
        },
        "general_settings": {"master_key": MASTER_KEY, "request_timeout_s": 10, **general},
    }


class App:
    """A deployed gateway app; ``pg``/``db``: its Postgres and database (``real`` backend only)."""

    def __init__(self, url: str, backend: str, pg: PostgresServer | None = None, db: str | None = None) -> None:
        self.url, self.backend, self.pg, self.db = url, backend, pg, db
        self.root = url.removesuffix("/v1")
        self.http = httpx.Client(base_url=self.root, timeout=30)

    def admin(self, method: str, path: str, key: str = MASTER_KEY, **kw: Any) -> httpx.Response:
        return self.http.request(method, path, headers={"authorization": f"Bearer {key}"}, **kw)

    def new_key(self, **body: Any) -> dict[str, Any]:
        resp = self.admin("POST", "/key/generate", json=body)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def client(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key=key, max_retries=0, timeout=30)


@pytest.fixture(scope="module", params=["real", "embedded", "cluster"])
def app(request: pytest.FixtureRequest, deploy_gateway: Callable[..., str], upstream: Any,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    from ray import serve

    backend = request.param
    with contextlib.ExitStack() as stack:
        pg, db, urls = None, None, {}
        if backend != "embedded":
            # Its own Postgres, not the session's: test_postgres_outage_loses_no_spend stops it.
            pg = start_service(PostgresServer)
            stack.callback(pg.close)
            db = pg.create_database()
            redis = request.getfixturevalue("redis_cluster" if backend == "cluster" else "redis_server")
            urls = {"database_url": pg.url(db), "redis_url": redis.url()}
        general = access_general("embedded" if backend == "embedded" else "real",
                                 str(tmp_path_factory.mktemp("access")), key_cache_ttl_s=60, **urls)
        replicas = 1 if backend == "embedded" else 2
        name = f"access-{backend}"
        overrides = {"Ingress": {**SMALL, "num_replicas": replicas}, "Provider-access": SMALL,
                     "RouterScoring": SMALL}
        url = deploy_gateway(access_config(upstream.url, general), name=name, route_prefix=f"/{name}",
                             overrides=overrides)
        yield App(url, backend, pg, db)
        serve.delete(name)


def chat(client: openai.OpenAI, model: str = CHEAP, text: str = "hi", **kw: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **kw)


def eventually(check: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``check`` until true; the deadline is generous (a loaded 2-core machine is slow)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_rpm_limit_holds_across_replicas_and_clients(app: App) -> None:
    key = app.new_key(rpm_limit=10)["key"]
    clients = [app.client(key), app.client(key)]

    def one(i: int) -> tuple[int, str | None]:
        try:
            chat(clients[i % 2], text=f"burst {i}")
            return 200, None
        except openai.RateLimitError as err:
            return 429, err.response.headers.get("retry-after")

    with ThreadPoolExecutor(40) as pool:
        results = list(pool.map(one, range(40)))
    assert [s for s, _ in results].count(200) == 10
    limited = [r for s, r in results if s == 429]
    assert len(limited) == 30 and all(r is not None and 1 <= int(r) <= 60 for r in limited)


def test_tpm_counts_streamed_tokens(app: App) -> None:
    client = app.client(app.new_key(tpm_limit=40)["key"])
    stream = client.chat.completions.create(model=CHEAP, messages=[{"role": "user", "content": "s [[fake tokens=50]]"}],
                                            stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    def limited() -> bool:
        try:
            chat(client)
        except openai.RateLimitError as err:
            return int(err.response.headers["retry-after"]) >= 1
        return False

    eventually(limited)


def test_budget_exhaustion_is_400(app: App) -> None:
    client = app.client(app.new_key(max_budget=1e-6)["key"])
    chat(client, text="spend [[fake tokens=30]]")  # 0.1 $/M x ~32 tokens > 1e-6 $

    def exhausted() -> bool:
        try:
            chat(client)
        except openai.BadRequestError as err:
            return err.code == "budget_exceeded"
        return False

    eventually(exhausted)


def test_model_allowlist_and_auto_narrowing(app: App) -> None:
    client = app.client(app.new_key(models=[MID])["key"])
    with pytest.raises(openai.PermissionDeniedError):
        chat(client, model=CHEAP)
    routed = chat(client, model="auto")  # cost-first would pick CHEAP; the allowlist leaves MID
    assert routed.headers["x-routeiq-model"] == MID


def test_expired_and_deleted_keys_are_401(app: App) -> None:
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    with pytest.raises(openai.AuthenticationError):
        chat(app.client(app.new_key(expires=past)["key"]))
    created = app.new_key()
    client = app.client(created["key"])
    for _ in range(4):  # warm both replicas' caches
        chat(client)
    resp = app.admin("POST", "/key/delete", json={"keys": [created["key_id"]]})
    assert resp.json() == {"deleted_keys": [created["key_id"]]}
    for _ in range(4):
        with pytest.raises(openai.AuthenticationError):
            chat(client)


def test_admin_routes_are_403_for_non_admin_keys(app: App) -> None:
    user = app.new_key()["key"]
    calls = [("POST", "/key/generate", {"json": {}}), ("GET", "/key/list", {}), ("POST", "/team/new", {"json": {}}),
             ("POST", "/key/delete", {"json": {"keys": ["x"]}}), ("GET", "/spend/keys", {}),
             ("GET", "/audit/log", {})]
    for method, path, kw in calls:
        resp = app.admin(method, path, key=user, **kw)
        assert resp.status_code == 403, path
        assert resp.json()["error"]["type"] == "permission_error"
    assert app.admin("GET", "/key/list", key="sk-wrong").status_code == 401
    admin_key = app.new_key(admin=True)["key"]
    assert app.admin("GET", "/key/list", key=admin_key).status_code == 200
    audit = app.admin("GET", "/audit/log", params={"size": 500}).json()["data"]
    assert any(a["action"] == "key.generate" and a["outcome"] == "denied" for a in audit)
    assert any(a["action"] == "key.list" and a["outcome"] == "success" and a["actor"] != "master" for a in audit)


def test_a_blocked_admin_key_loses_every_route_at_its_next_request(app: App) -> None:
    """Caches live 60 s here: only the version check can refuse the key this fast, on every replica."""
    admin = app.new_key(admin=True)
    user = app.new_key()
    for _ in range(4):  # warm both replicas' caches
        assert app.admin("GET", "/key/list", key=admin["key"]).status_code == 200
        assert app.admin("GET", "/v1/models", key=user["key"]).status_code == 200
    for ref in (admin, user):
        assert app.admin("POST", "/key/block", json={"key": ref["key_id"]}).status_code == 200
    for _ in range(4):
        assert app.admin("GET", "/key/list", key=admin["key"]).status_code == 401
        assert app.admin("GET", "/audit/log", key=admin["key"]).status_code == 401
        assert app.admin("GET", "/v1/models", key=user["key"]).status_code == 401
        fb = app.admin("POST", "/v1/feedback", key=user["key"], json={"request_id": "x", "score": 1})
        assert fb.status_code == 401


def test_key_info_answers_alike_for_other_keys_and_missing_ones(app: App) -> None:
    mine, other = app.new_key(), app.new_key()
    assert app.admin("GET", "/key/info", key=mine["key"]).json()["key_id"] == mine["key_id"]
    answers = [app.admin("GET", "/key/info", key=mine["key"], params={"key": ref})
               for ref in (other["key_id"], other["key"], "key_0000000000000000", "sk-" + "a" * 43)]
    assert {r.status_code for r in answers} == {404}
    assert len({r.content for r in answers}) == 1  # the same body: nothing to tell them apart


def test_a_flood_of_random_tokens_is_refused_and_real_keys_keep_working(app: App) -> None:
    from app.access.keys import new_key

    real = app.client(app.new_key()["key"])
    chat(real)
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda _: app.admin("GET", "/v1/models", key=new_key()).status_code, range(400)))
    assert set(statuses) <= {401, 503} and statuses.count(401) > 0  # 503: the lookup budget is spent
    chat(real)  # cached: never throttled


def test_the_router_fallback_never_leaves_the_allowlist(app: App) -> None:
    client = app.client(app.new_key(models=[CHEAP, "hurried"])["key"])
    raw = chat(client, model="hurried")
    assert raw.headers["x-routeiq-strategy"] == "fallback"
    assert raw.headers["x-routeiq-model"] == CHEAP  # the configured fallback (MID) is not this key's


def test_one_key_cannot_cool_a_model_down_for_everyone(app: App) -> None:
    attacker = app.client(app.new_key()["key"])
    for _ in range(6):  # CHEAP fails for this key's requests, twice allowed_fails
        with pytest.raises(openai.APIStatusError):
            chat(attacker, model=CHEAP, text=f"boom {uuid.uuid4().hex} [[fake error=500 only={CHEAP}]]")
    other = app.client(app.new_key()["key"])
    for _ in range(4):  # on every replica, cost-first still picks CHEAP: it is not cooling down
        assert chat(other, model="auto").headers["x-routeiq-model"] == CHEAP


def test_teams_share_limits(app: App) -> None:
    team = app.admin("POST", "/team/new", json={"team_alias": "ml", "rpm_limit": 2}).json()
    a = app.client(app.new_key(team_id=team["team_id"])["key"])
    b = app.client(app.new_key(team_id=team["team_id"])["key"])
    chat(a)
    chat(b)
    with pytest.raises(openai.RateLimitError):
        chat(a)
    info = app.admin("GET", "/team/info", params={"team_id": team["team_id"]}).json()
    assert len(info["keys"]) == 2


def read_admin(app: App, path: str, timeout: float = 60.0, **kw: Any) -> httpx.Response:
    """GET an admin/spend route, asking again while it answers 503.

    The gateway answers 503 (Retry-After) while its database breaker is open, including
    for a while after the database is back (docs/operations.md, "Database down").
    """
    deadline = time.monotonic() + timeout
    while (resp := app.admin("GET", path, **kw)).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    return resp


def _spend_rows(app: App, key_id: str) -> list[dict[str, Any]]:
    resp = read_admin(app, "/spend/logs", params={"key_id": key_id, "size": 1000})
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def test_spend_rows_match_usage(app: App) -> None:
    created = app.new_key()
    client = app.client(created["key"])
    usage = {}
    for i in range(6):
        raw = chat(client, model=CHEAP if i % 2 else MID, text=f"usage {i} [[fake tokens={5 + i}]]")
        reply = raw.parse()
        usage[raw.headers["x-request-id"]] = (reply.usage.prompt_tokens, reply.usage.completion_tokens,
                                              reply.usage.model_extra["cost"])
    eventually(lambda: len(_spend_rows(app, created["key_id"])) == 6)
    rows = {r["request_id"]: r for r in _spend_rows(app, created["key_id"])}
    assert set(rows) == set(usage)
    for rid, (p, c, cost) in usage.items():
        assert (rows[rid]["prompt_tokens"], rows[rid]["completion_tokens"]) == (p, c)
        assert rows[rid]["cost"] == pytest.approx(cost)
    report = app.admin("GET", "/spend/models", params={"key_id": created["key_id"]}).json()["data"]
    assert sum(r["requests"] for r in report) == 6
    assert sum(r["cost"] for r in report) == pytest.approx(sum(u[2] for u in usage.values()))


def test_concurrent_requests_cannot_overshoot_the_budget(app: App) -> None:
    """Each request reserves its prompt and max_tokens at CHEAP's $0.1/1M: ~$0.0001; $0.00035
    fits three at once, whatever the replicas (the reservation is atomic with the RPM check)."""
    client = app.client(app.new_key(max_budget=0.00035)["key"])

    def one(i: int) -> int:
        try:
            chat(client, text=f"slow {i} [[fake latency_ms=1500]]", max_tokens=1000)
            return 200
        except openai.APIStatusError as err:
            assert err.status_code == 400 and err.body["code"] == "budget_exceeded", err.body
            return 400

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(one, range(10)))
    assert statuses.count(200) == 3 and statuses.count(400) == 7
    chat(client, max_tokens=1000)  # settled at what they used (~$0.0000017 each): room again


def test_an_abandoned_stream_is_charged_for_what_was_relayed(app: App) -> None:
    created = app.new_key()
    body = {"model": CHEAP, "stream": True,
            "messages": [{"role": "user", "content": "long [[fake tokens=200 itl_ms=30]]"}]}
    with app.http.stream("POST", "/v1/chat/completions", json=body,
                         headers={"authorization": f"Bearer {created['key']}"}) as resp:
        rid = resp.headers["x-request-id"]
        lines = resp.iter_lines()
        received = [next(lines) for _ in range(6)]
    assert all(line == "" or line.startswith("data: ") for line in received)
    eventually(lambda: len(_spend_rows(app, created["key_id"])) == 1)
    [row] = _spend_rows(app, created["key_id"])
    assert row["request_id"] == rid and 1 <= row["completion_tokens"] < 200 and row["cost"] > 0


def test_keys_are_not_in_plaintext_in_the_database_or_logs(app: App) -> None:
    created = app.new_key(key_alias="secret-check")
    chat(app.client(created["key"]))
    with pytest.raises(openai.AuthenticationError):
        chat(app.client(created["key"] + "x"))
    if app.pg is not None and app.db is not None:
        dump = app.pg.psql("SELECT t::text FROM routeiq_keys t; SELECT t::text FROM routeiq_audit_log t", app.db)
        assert created["key_id"] in dump
        assert created["key"] not in dump and created["key"][3:] not in dump
    logs = glob.glob("/tmp/ray/session_latest/logs/**/*", recursive=True)
    for path in logs:
        try:
            with open(path, errors="ignore") as fh:
                assert created["key"][3:] not in fh.read(), path
        except (IsADirectoryError, PermissionError):
            continue


def test_postgres_outage_loses_no_spend(app: App) -> None:
    if app.pg is None:
        pytest.skip("embedded mode has no database server to stop")
    created = app.new_key()
    client = app.client(created["key"])
    # Both replicas cache the key (TTL 60 s) so requests go on during the outage. Serve picks
    # a replica at random: 16 requests miss one of two with probability 2**-15.
    for _ in range(16):
        chat(client)
    rids = set()
    app.pg.stop()
    try:
        for i in range(8):
            rids.add(chat(client, text=f"outage {i} {uuid.uuid4().hex}").headers["x-request-id"])
        time.sleep(1.0)  # the outage lasts: flush attempts fail and the events stay buffered (not a wait)
    finally:
        app.pg.start()
    eventually(lambda: len(_spend_rows(app, created["key_id"])) == 24, timeout=120)
    rows = _spend_rows(app, created["key_id"])
    assert rids <= {r["request_id"] for r in rows} and len(rows) == 24
