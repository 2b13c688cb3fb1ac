"""An admin script written for LiteLLM proxy's API, run unchanged against RouteIQ.

The calls are those LiteLLM's docs show (``/key/generate`` with a budget, tags and a user,
``/key/info``, ``/key/regenerate`` and ``/key/{key}/regenerate``, ``/spend/logs`` by
``api_key``, ``user_id`` and ``start_date``/``end_date``), plus what a client sees of a
key's limits: ``max_parallel_requests`` and the ``x-ratelimit-*`` headers. One app, on
real Postgres and Redis with two ingress replicas (so "at once, across replicas" is
tested where it can fail), through the real Serve graph and the fake upstream; the
``soft_budget`` webhook goes to a small HTTP server of the test's own.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import openai
import pytest

from devtools.configs import CHEAP, MASTER_KEY, MID
from devtools.services import PostgresServer, RedisServer
from tests.access_support import access_general
from tests.integration.gateway_app import SMALL, two_model_config

NAME = "litellm-admin"


class Webhook:
    """Collects the JSON bodies POSTed to it (the soft-budget alerts)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def hook() -> Iterator[Webhook]:
    webhook = Webhook()
    yield webhook
    webhook.server.shutdown()


@pytest.fixture(scope="module")
def proxy(deploy_gateway: Callable[..., str], upstream: Any, postgres_server: PostgresServer,
          redis_server: RedisServer, hook: Webhook, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app's root URL (a LiteLLM script's ``base_url``)."""
    from ray import serve

    general = access_general("real", str(tmp_path_factory.mktemp(NAME)), key_cache_ttl_s=60,
                             database_url=postgres_server.url(postgres_server.create_database()),
                             redis_url=redis_server.url(), soft_budget_webhook_url=hook.url)
    overrides = {"Ingress": {**SMALL, "num_replicas": 2}, f"Provider-{NAME}": SMALL, "RouterScoring": SMALL}
    url = deploy_gateway(two_model_config(upstream.url, general, NAME), name=NAME, route_prefix=f"/{NAME}",
                         overrides=overrides)
    yield url.removesuffix("/v1")
    serve.delete(NAME)


HEADERS = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}


def chat(base: str, key: str, text: str = "hi", **kw: Any) -> httpx.Response:
    return httpx.post(f"{base}/chat/completions", headers={"Authorization": f"Bearer {key}"}, timeout=60,
                      json={"model": CHEAP, "messages": [{"role": "user", "content": text}], **kw})


def eventually(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)
    return result


def test_litellm_admin_script_runs_unchanged(proxy: str, hook: Webhook) -> None:
    # --- the script, as LiteLLM's docs write it -----------------------------------------------
    resp = httpx.post(f"{proxy}/key/generate", headers=HEADERS, json={
        "models": [CHEAP, MID], "max_budget": 10.0, "budget_duration": "30d", "soft_budget": 0.000001,
        "tags": ["batch-jobs", "team-a"], "user_id": "ishaan@berri.ai", "metadata": {"purpose": "nightly"},
    })
    assert resp.status_code == 200, resp.text
    key = resp.json()["key"]

    for i in range(3):
        assert chat(proxy, key, f"job {i}").status_code == 200

    info = httpx.get(f"{proxy}/key/info", params={"key": key}, headers=HEADERS).json()["info"]
    assert info["user_id"] == "ishaan@berri.ai" and info["tags"] == ["batch-jobs", "team-a"]
    assert info["max_budget"] == 10.0 and info["budget_duration"] == "30d" and info["soft_budget"] == 0.000001
    now = datetime.now(UTC)
    first_of_next = (now.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0,
                                                                      microsecond=0)
    assert datetime.fromisoformat(info["budget_reset_at"]) == first_of_next  # "30d": the 1st, as LiteLLM
    spent = eventually(lambda: httpx.get(f"{proxy}/key/info", params={"key": key},
                                         headers=HEADERS).json()["info"]["spend"])
    assert spent > 0

    listed = httpx.get(f"{proxy}/key/list", params={"user_id": "ishaan@berri.ai", "tags": "team-a"},
                       headers=HEADERS).json()["keys"]
    assert [k["key_id"] for k in listed] == [info["key_id"]]

    today = now.date().isoformat()
    logs = eventually(lambda: len(rows := httpx.get(f"{proxy}/spend/logs", headers=HEADERS, params={
        "api_key": key, "start_date": today, "end_date": today}).json()["data"]) == 3 and rows)
    assert {r["user_id"] for r in logs} == {"ishaan@berri.ai"} and {r["key_id"] for r in logs} == {info["key_id"]}
    by_user = httpx.get(f"{proxy}/spend/logs", headers=HEADERS, params={"user_id": "ishaan@berri.ai"}).json()
    assert len(by_user["data"]) == 3
    yesterday = (now - timedelta(days=1)).date().isoformat()
    before = httpx.get(f"{proxy}/spend/logs", headers=HEADERS, params={
        "api_key": key, "start_date": "2024-01-01", "end_date": yesterday}).json()
    assert before["data"] == []
    bad = httpx.get(f"{proxy}/spend/logs", headers=HEADERS, params={"start_date": "01/02/2024"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "start_date"

    resp = httpx.post(f"{proxy}/key/regenerate", headers=HEADERS, json={"key": key})
    assert resp.status_code == 200, resp.text
    new_key = resp.json()["key"]
    assert new_key != key and resp.json()["key_id"] == info["key_id"]
    for _ in range(4):  # both replicas, whichever cached the old secret
        assert chat(proxy, key).status_code == 401
    assert chat(proxy, new_key).status_code == 200
    resp = httpx.post(f"{proxy}/key/{new_key}/regenerate", headers=HEADERS)
    assert resp.status_code == 200 and chat(proxy, resp.json()["key"]).status_code == 200
    assert chat(proxy, new_key).status_code == 401

    # --- the soft budget's alert hook fired once for this window ------------------------------
    alerts = eventually(lambda: [b for b in hook.bodies if b["key_id"] == info["key_id"]])
    time.sleep(1)  # more charges went on since: still one alert
    assert len([b for b in hook.bodies if b["key_id"] == info["key_id"]]) == 1
    assert alerts[0]["user_id"] == "ishaan@berri.ai" and alerts[0]["spend"] >= 0.000001


def test_max_parallel_requests_holds_across_replicas(proxy: str) -> None:
    key = httpx.post(f"{proxy}/key/generate", headers=HEADERS, json={"max_parallel_requests": 2}).json()["key"]

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda i: chat(proxy, key, f"slow {i} [[fake latency_ms=6000]]").status_code,
                              range(6)))
    assert codes.count(200) == 2 and codes.count(429) == 4
    assert chat(proxy, key).status_code == 200  # every slot released once its request ended
    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key=key, max_retries=0)
    with client.chat.completions.create(model=CHEAP, messages=[{"role": "user", "content": "s"}],
                                        stream=True) as stream:
        list(stream)
    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda i: chat(proxy, key).status_code, range(2))) == [200, 200]


def test_rate_limit_headers_count_down(proxy: str) -> None:
    key = httpx.post(f"{proxy}/key/generate", headers=HEADERS, json={"rpm_limit": 5, "tpm_limit": 100000}).json()
    client = openai.OpenAI(base_url=f"{proxy}/v1", api_key=key["key"], max_retries=0)
    left = []
    for i in range(3):
        raw = client.chat.completions.with_raw_response.create(
            model=CHEAP, messages=[{"role": "user", "content": f"hi {i}"}], max_tokens=10)
        h = raw.headers
        assert h["x-ratelimit-limit-requests"] == "5" and h["x-ratelimit-limit-tokens"] == "100000"
        assert int(h["x-ratelimit-remaining-tokens"]) < 100000 and h["x-ratelimit-reset-requests"].endswith("s")
        left.append(int(h["x-ratelimit-remaining-requests"]))
    assert left == [4, 3, 2]
    with httpx.stream("POST", f"{proxy}/v1/chat/completions", headers={"Authorization": f"Bearer {key['key']}"},
                      json={"model": CHEAP, "messages": [{"role": "user", "content": "s"}], "stream": True},
                      timeout=60) as resp:
        assert resp.status_code == 200 and resp.headers["x-ratelimit-remaining-requests"] == "1"
        resp.read()
    plain = httpx.post(f"{proxy}/key/generate", headers=HEADERS, json={}).json()["key"]
    assert "x-ratelimit-limit-requests" not in chat(proxy, plain).headers
