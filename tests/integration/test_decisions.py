"""The decision log end to end: the openai SDK → Serve → rows in the database → feedback → export.

Runs twice: ``embedded`` (SQLite file) and ``real`` (Postgres, its own database). Also
checks that no secret reaches any log file of the Ray session, and that the replicas'
JSON log lines carry request ids.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from typer.testing import CliRunner

from app.cli import build_cli
from devtools.configs import CHEAP, MASTER_KEY, MID
from devtools.services import PostgresServer
from tests.access_support import access_general
from tests.integration.gateway_app import decision_rows

SMALL = {"ray_actor_options": {"num_cpus": 0.05}}
PROVIDER_KEY = f"sk-prov-{secrets.token_hex(8)}"


def decisions_config(upstream: str, general: dict[str, Any]) -> dict[str, Any]:
    def entry(name: str, price: float) -> dict[str, Any]:
        return {"model_name": name, "provider_group": "decisions",
                "litellm_params": {"model": f"openai/{name}", "api_base": upstream, "api_key": PROVIDER_KEY},
                "model_info": {"input_cost_per_token": price / 1e6, "output_cost_per_token": price / 1e6}}

    return {
        "model_list": [entry(CHEAP, 0.1), entry(MID, 0.5)],
        "router_settings": {
            "routers": [{"name": "auto", "strategy": "cost-first", "fallback_model": MID, "scoring": "replica"},
                        {"name": "hasty", "strategy": "cost-first", "fallback_model": MID, "timeout_ms": 0.001,
                         "scoring": "replica"}],  # the hop: a deadline it cannot meet
            "aliases": {"auto:thrifty": {"router": "auto", "lambda": 0.2}},
            "num_retries": 0,
        },
        "general_settings": {"master_key": MASTER_KEY, "request_timeout_s": 10,
                             "decisions": {"flush_interval_s": 0.2}, **general},
    }


class App:
    def __init__(self, url: str, db_url: str) -> None:
        self.url, self.db_url = url, db_url
        self.http = httpx.Client(base_url=url.removesuffix("/v1"), timeout=30)

    def client(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key=key, max_retries=0, timeout=30)

    def new_key(self) -> str:
        resp = self.http.post("/key/generate", json={}, headers={"authorization": f"Bearer {MASTER_KEY}"})
        assert resp.status_code == 200, resp.text
        return str(resp.json()["key"])

    def feedback(self, key: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post("/v1/feedback", json=body, headers={"authorization": f"Bearer {key}"})

    def rows(self) -> dict[str, dict[str, Any]]:
        return decision_rows(self.db_url)

    def wait_rows(self, ids: set[str], timeout: float = 60.0) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows()
            if ids <= set(rows) or time.monotonic() > deadline:
                return rows
            time.sleep(0.2)


@pytest.fixture(scope="module", params=["embedded", "real"])
def app(request: pytest.FixtureRequest, deploy_gateway: Callable[..., str], upstream: Any,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    from ray import serve

    backend = request.param
    tmp = str(tmp_path_factory.mktemp("decisions"))
    pg: PostgresServer | None = None
    db, db_url, urls = None, f"sqlite:///{tmp}/routeiq.db", {}
    if backend == "real":  # the session's servers (this module stops neither)
        pg = request.getfixturevalue("postgres_server")
        db = pg.create_database()
        db_url = pg.url(db)
        urls = {"database_url": db_url, "redis_url": request.getfixturevalue("redis_server").url()}
    general = access_general(backend, tmp, **urls)
    name = f"decisions-{backend}"
    overrides = {"Ingress": SMALL, "Provider-decisions": SMALL, "RouterScoring": SMALL}
    url = deploy_gateway(decisions_config(upstream.url, general), name=name, route_prefix=f"/{name}",
                         overrides=overrides)
    yield App(url, db_url)
    serve.delete(name)
    if pg and db:
        pg.drop_database(db)


def chat(client: openai.OpenAI, model: str, text: str, **kw: Any) -> str:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **kw)
    if kw.get("stream"):
        assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    return str(raw.headers["x-request-id"])


def test_one_row_per_routed_request(app: App) -> None:
    key = app.new_key()
    client = app.client(key)
    ids = {
        "plain": chat(client, "auto", "plain question"),
        "alias": chat(client, "auto:thrifty", "alias question"),
        "stream": chat(client, "auto", "streamed question", stream=True),
        "failover": chat(client, "auto", "failover [[fake error=500 only=tiny-model]]"),
        "router_fallback": chat(client, "hasty", "router too slow"),
    }
    with pytest.raises(openai.InternalServerError) as failed:
        chat(client, "auto", "everything fails [[fake error=500]]")
    ids["failed"] = failed.value.response.headers["x-request-id"]
    concrete = chat(client, CHEAP, "no router here")

    rows = app.wait_rows(set(ids.values()))
    assert set(ids.values()) <= set(rows) and concrete not in rows
    plain = rows[ids["plain"]]
    assert plain["key_id"] != "master" and plain["router"] == "auto" and plain["strategy"] == "cost-first"
    assert plain["query"] == "plain question" and set(plain["candidates"]) == {CHEAP, MID}
    assert (plain["chosen"], plain["routed_to"], plain["status"]) == (CHEAP, CHEAP, 200)
    assert plain["prompt_tokens"] > 0 and plain["completion_tokens"] > 0 and plain["cost"] > 0
    assert plain["latency_ms"] > 0 and plain["feedback"] is None
    assert rows[ids["alias"]]["router"] == "auto:thrifty" and rows[ids["alias"]]["lambda"] == 0.2
    assert rows[ids["stream"]]["completion_tokens"] > 0 and rows[ids["stream"]]["status"] == 200
    failover = rows[ids["failover"]]
    assert (failover["routed_to"], failover["chosen"], failover["status"]) == (CHEAP, MID, 200)
    fallback = rows[ids["router_fallback"]]
    assert fallback["strategy"] == "fallback" and fallback["fallback"] is True and fallback["chosen"] == MID
    assert rows[ids["failed"]]["status"] == 502


def test_feedback_updates_the_row(app: App) -> None:
    owner, other = app.new_key(), app.new_key()
    rid = chat(app.client(owner), "auto", "rate me")
    resp = app.feedback(owner, {"request_id": rid, "score": 0.9})  # most likely still buffered
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"object": "feedback", "request_id": rid, "score": 0.9}
    denied = app.feedback(other, {"request_id": rid, "score": 0.0})
    assert denied.status_code == 404 and denied.json()["error"]["code"] == "request_not_found"
    assert app.feedback(MASTER_KEY, {"request_id": rid, "score": 0.7}).status_code == 200
    assert app.feedback(owner, {"request_id": "no-such-request", "score": 1}).status_code == 404
    bad = app.feedback(owner, {"request_id": rid, "score": 1.5})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    assert app.feedback("sk-wrong", {"request_id": rid, "score": 1}).status_code == 401
    row = app.wait_rows({rid})[rid]  # the row may still be buffered (flushed every 0.2 s)
    assert row["feedback"] == 0.7 and row["feedback_at"]


def test_export_produces_the_rows(app: App, tmp_path: Any) -> None:
    rid = chat(app.client(app.new_key()), "auto", "export me")
    app.wait_rows({rid})
    out = tmp_path / "decisions.jsonl"
    result = CliRunner().invoke(build_cli(), ["decisions", "export", "--database-url", app.db_url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    exported = {r["request_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert rid in exported and exported[rid]["query"] == "export me"


def _session_logs() -> list[str]:
    import ray

    logs_dir = ray._private.worker._global_node.get_logs_dir_path()  # this session's, not session_latest
    return [p for p in glob.glob(f"{logs_dir}/**/*", recursive=True) if os.path.isfile(p)]


def test_no_secret_in_any_log_line(app: App) -> None:
    key = app.new_key()
    rid = chat(app.client(key), "hasty", "log me")  # the router fallback logs a warning with the id
    with pytest.raises(openai.AuthenticationError):
        chat(app.client(key + "x"), "auto", "wrong key")
    deadline = time.monotonic() + 60  # log files are written asynchronously; generous on a loaded machine
    while True:
        texts = {}
        for path in _session_logs():
            with open(path, errors="ignore") as fh:
                texts[path] = fh.read()
        json_lines = [line for t in texts.values() for line in t.splitlines() if f'"request_id":"{rid}"' in line]
        if json_lines or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for path, text in texts.items():
        for secret in (MASTER_KEY, key[3:], PROVIDER_KEY[3:]):
            assert secret not in text, f"{secret[:6]}... in {path}"
    assert json_lines, "no JSON log line with the request id of the router fallback"
    line = json.loads(json_lines[0])
    assert line["logger"] == "routeiq.gateway" and line["level"] == "WARNING" and line["component"] == "ingress"
