"""The bad-input battery: every route, through the real graph, with one thing wrong at a time.

A gateway with virtual keys on the session's Redis and a Postgres database of its own
is deployed under Serve with the fake upstream; ``bad_inputs.cases`` generates the
requests (wrong types, missing fields, huge numbers, deep nesting, a 5 MB body, a
chunked body past the limit, invalid UTF-8, NaN/Infinity/1e999, odd headers and query
strings) for the master key, a virtual key and no key. Every answer must be below 500
and, when it is an error, OpenAI-shaped JSON; no connection may be reset; and what
was refused writes nothing (spend rows, decision rows, keys and teams are counted
before and after and must grow by exactly what the accepted requests wrote; audit rows
as docs/access.md says). About 2,000 requests, ~16 s on the 2-core dev machine.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from devtools.configs import CHEAP, MASTER_KEY, MID
from devtools.services import PostgresServer
from tests.access_support import access_general
from tests.integration.bad_inputs import Case, cases

SMALL = {"ray_actor_options": {"num_cpus": 0.05}}
NAME = "bad-input"
BODY_LIMIT = 65536
ERROR_KEYS = {"message", "type", "param", "code"}


def battery_config(upstream: str, general: dict[str, Any]) -> dict[str, Any]:
    """Two chat models, an embedding model and a router, one provider group, 64 KiB bodies."""
    def entry(name: str, price: float, **info: Any) -> dict[str, Any]:
        return {"model_name": name, "provider_group": "bad",
                "litellm_params": {"model": f"openai/{name}", "api_base": upstream, "api_key": "sk-up"},
                "model_info": {"input_cost_per_token": price / 1e6, "output_cost_per_token": price / 1e6, **info}}

    general = {**general, "decisions": {"flush_interval_s": 0.2}}
    return {
        "model_list": [entry(CHEAP, 0.1), entry(MID, 0.5), entry("embed-model", 0.02, mode="embedding")],
        "router_settings": {"routers": [{"name": "auto", "strategy": "cost-first", "fallback_model": MID,
                                         "scoring": "replica"}]},
        "general_settings": {"master_key": MASTER_KEY, "request_timeout_s": 10,
                             "max_request_body_bytes": BODY_LIMIT, **general},
    }


def problem_of(status: int, content_type: str, body: bytes) -> str | None:
    """What is wrong with an answer to a bad request (``None``: nothing)."""
    if status >= 500:
        return f"{status}: {body[:300]!r}"
    if status < 400:
        return None
    if not content_type.startswith("application/json"):
        return f"{status} with content-type {content_type!r}: {body[:200]!r}"
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"{status} not JSON: {body[:200]!r}"
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict) or not set(error) >= ERROR_KEYS or not isinstance(error["message"], str) \
            or not isinstance(error["type"], str):
        return f"{status} not OpenAI-shaped: {body[:200]!r}"
    return None


@dataclass
class Outcome:
    case: Case
    status: int = 0
    problem: str | None = None
    seconds: float = 0.0


class Target:
    """The deployed battery gateway, its keys and its database."""

    def __init__(self, root: str, pg: PostgresServer, db: str) -> None:
        self.root, self.pg, self.db = root, pg, db
        self.http = httpx.Client(base_url=root, timeout=60, limits=httpx.Limits(max_connections=16))
        self.keys: dict[str, str] = {"master": MASTER_KEY}
        self.key_ids: dict[str, str] = {}

    def new_key(self, role: str, **body: Any) -> None:
        resp = self.http.post("/key/generate", json=body, headers={"authorization": f"Bearer {MASTER_KEY}"})
        assert resp.status_code == 200, resp.text
        self.keys[role], self.key_ids[role] = resp.json()["key"], resp.json()["key_id"]

    def counts(self) -> dict[str, int]:
        tables = {"spend": "routeiq_spend_logs", "decisions": "routeiq_decisions", "keys": "routeiq_keys",
                  "teams": "routeiq_teams", "audit": "routeiq_audit_log"}
        sql = " UNION ALL ".join(f"SELECT '{k}', count(*) FROM {t}" for k, t in tables.items())
        sql += " UNION ALL SELECT 'audit_max_id', coalesce(max(id), 0) FROM routeiq_audit_log"
        rows = [line.split("|") for line in self.pg.psql(sql, self.db).split()]
        return {k: int(v) for k, v in rows}

    def send(self, case: Case) -> Outcome:
        headers: dict[str, bytes] = {}
        if case.body is not None:
            headers["content-type"] = b"application/json"
        if case.caller != "none":
            headers["authorization"] = f"Bearer {self.keys[case.caller]}".encode()
        headers.update({k: v.encode() for k, v in case.headers})
        url = case.route.path.split("#")[0] + (f"?{case.query}" if case.query else "")
        content: Any = None
        if case.body is not None:
            content = _chunks(case.body, case.repeat) if case.chunked else case.body * case.repeat
        started = time.monotonic()
        try:
            with self.http.stream(case.http_method, url, content=content, headers=headers) as resp:
                body = resp.read()
        except httpx.HTTPError as err:
            return Outcome(case, 0, f"connection: {type(err).__name__}: {err}", time.monotonic() - started)
        problem = problem_of(resp.status_code, resp.headers.get("content-type", ""), body)
        return Outcome(case, resp.status_code, problem, time.monotonic() - started)


def _chunks(body: bytes, repeat: int) -> Iterator[bytes]:
    for _ in range(repeat):
        yield body


@pytest.fixture(scope="module")
def target(deploy_gateway: Callable[..., str], upstream: Any, postgres_server: PostgresServer,
           redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    from ray import serve

    db = postgres_server.create_database()
    general = access_general("real", str(tmp_path_factory.mktemp("bad")), database_url=postgres_server.url(db),
                             redis_url=redis_server.url())
    overrides = {"Ingress": SMALL, "Provider-bad": SMALL, "RouterScoring": SMALL}
    url = deploy_gateway(battery_config(upstream.url, general), name=NAME, route_prefix=f"/{NAME}",
                         overrides=overrides)
    t = Target(url.removesuffix("/v1"), postgres_server, db)
    t.new_key("virtual", key_alias="battery")
    t.new_key("target", key_alias="mutated by the battery")
    yield t
    t.http.close()
    serve.delete(NAME)
    postgres_server.drop_database(db)


def expected_writes(outcomes: list[Outcome]) -> dict[str, int]:
    """The rows the accepted requests of the battery write (refused ones write none)."""
    ok = Counter[str]()
    for o in outcomes:
        path = o.case.route.path
        if not 200 <= o.status < 300:
            continue
        if path.startswith(("/v1/chat", "/v1/completions", "/v1/embeddings")):
            ok["spend"] += 1
            ok["decisions"] += path.endswith("#auto")  # only `auto` is routed: one decision row each
        elif path in ("/key/generate", "/team/new"):
            ok["keys" if path == "/key/generate" else "teams"] += 1
    return ok


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_the_battery_gets_no_5xx_only_openai_errors_and_refusals_write_nothing(target: Target) -> None:
    battery = cases(target.key_ids["virtual"], target.key_ids["target"])
    assert len(battery) > 300
    before = target.counts()
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(target.send, battery))
    elapsed = time.monotonic() - started
    problems = [f"{o.case.http_method} {o.case.route.path} [{o.case.caller}] {o.case.name}: {o.problem}"
                for o in outcomes if o.problem]
    assert not problems, f"{len(problems)} of {len(outcomes)} answers were wrong:\n" + "\n".join(problems[:60])
    assert elapsed < 60, f"the battery took {elapsed:.0f} s"
    print(f"{len(outcomes)} requests in {elapsed:.1f} s: {dict(Counter(o.status for o in outcomes))}")

    expected = expected_writes(outcomes)
    wanted = {k: before[k] + expected[k] for k in ("spend", "decisions", "keys", "teams")}
    eventually(lambda: {k: v for k, v in target.counts().items() if k in wanted} == wanted)
    check_audit(target, outcomes, before["audit_max_id"])


AUDITED = {"/key/generate": "key.generate", "/key/update": "key.update", "/key/block": "key.block",
           "/key/unblock": "key.unblock", "/key/delete": "key.delete", "/key/list": "key.list",
           "/team/new": "team.new", "/team/update": "team.update", "/team/delete": "team.delete"}
"""Routes whose action is audited (docs/access.md); ``/key/info``, ``/team/info`` and reads are not."""


READS = frozenset({"key.info", "team.info", "team.list", "audit.read"})


def check_audit(target: Target, outcomes: list[Outcome], after_id: int) -> None:
    """Audit rows as documented: one ``success`` per action done, one ``denied`` per admin route
    a virtual key was refused (403); an action refused by the action itself (an unknown team)
    is audited with its code, one refused for its input (400 before the action) is not."""
    sql = f"SELECT action, outcome, count(*) FROM routeiq_audit_log WHERE id > {after_id} GROUP BY 1, 2"
    rows = {(a, o): int(n) for a, o, n in (line.split("|") for line in target.pg.psql(sql, target.db).split())}
    success, denied, refused = Counter[str](), 0, Counter[str]()
    for o in outcomes:
        action = AUDITED.get(o.case.route.path)
        admin_only = o.case.route.admin and o.case.route.path != "/key/info"  # a key may read its own info
        if o.case.caller == "virtual" and admin_only and o.status == 403:
            denied += 1
        elif o.case.caller == "master" and action and 200 <= o.status < 300:
            success[action] += 1
        elif o.case.caller == "master" and action and o.status >= 400:
            refused[action] += 1
    # Admin reads are audited too (key.info, team.info, team.list, audit.read), one row per read;
    # their rows are checked in tests/unit/app/audit/test_audit_app.py, this battery checks writes.
    rows = {(a, o): n for (a, o), n in rows.items() if not (a in READS and o != "denied")}
    assert {a: n for (a, out), n in rows.items() if out == "success"} == dict(success)
    assert sum(n for (_, out), n in rows.items() if out == "denied") == denied
    for (action, out), n in rows.items():
        if out not in ("success", "denied"):
            assert n <= refused[action], (action, out, n)


def test_requests_refused_for_their_input_write_no_audit_row(target: Target) -> None:
    """An admin request refused before its action runs (400/413) leaves no trace but the answer."""
    auth = {"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"}
    refused = [("/key/generate", b'{"rpm_limit": 18446744073709551616}'), ("/key/generate", b"[]"),
               ("/team/new", b'{"team_id": "a\\u0000b"}'), ("/key/update", b'{"key": "x", "metadata": 5}'),
               ("/team/update", b'{"team_id": "t", "max_budget": 1e999}')]
    before = target.counts()["audit"]
    for path, raw in refused:
        resp = target.http.post(path, content=raw, headers=auth)
        assert resp.status_code == 400, (path, resp.text)
    assert target.counts()["audit"] == before


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/key/generate", "/v1/feedback"])
def test_a_chunked_body_over_the_limit_is_cut_with_413(target: Target, route: str) -> None:
    """Through Serve's proxy too: an answer, not a reset (tests/unit/app/test_http.py checks
    that the gateway stops reading at the limit)."""

    def body() -> Iterator[bytes]:
        for _ in range(200):  # 12.5 MB offered
            yield b" " * 65536

    resp = target.http.post(route, content=body(), headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "request_too_large"
