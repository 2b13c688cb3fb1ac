"""The console's routes in-process (no Ray, no browser): sign-in, session, CSRF, the admin rules.

The browser tests (tests/integration/test_console.py) drive the same pages through
chromium; these pin the security rules one by one, fast.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.access.policy import VirtualKeyPolicy
from app.access.request_stats import RequestStats
from app.config import parse_config
from app.console.session import COOKIE
from app.gateway import Gateway
from app.main import create_app
from app.providers.pool import LocalProviderPool
from app.wiring import build_gateway
from devtools.configs import CHEAP, MASTER_KEY, gateway_config
from devtools.servers import ThreadedFakeUpstream

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
PAGES = ("overview", "routing", "keys", "spend", "health")


@pytest.fixture
async def client(tmp_path: Any) -> AsyncIterator[httpx.AsyncClient]:
    cfg = parse_config(gateway_config("http://127.0.0.1:1/v1", access={"sqlite_path": f"{tmp_path}/r.db"}))
    app = create_app(build_gateway(cfg, LocalProviderPool(cfg), None))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


async def _sign_in(http: httpx.AsyncClient, key: str = MASTER_KEY) -> str:
    """Signs in; returns the page's CSRF token."""
    resp = await http.post("/ui/login", data={"key": key})
    assert resp.status_code == 303 and resp.headers["location"] == "/ui/overview", resp.text
    cookie = resp.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
    page = await http.get("/ui/overview")
    assert page.status_code == 200
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found
    return found.group(1)


async def test_pages_need_a_session_and_the_api_answers_401(client: httpx.AsyncClient) -> None:
    for name in PAGES:
        resp = await client.get(f"/ui/{name}")
        assert resp.status_code == 303 and resp.headers["location"] == "/ui/login"
    assert (await client.get("/ui/api/overview")).status_code == 401
    assert (await client.get("/ui/api/overview", headers=ADMIN)).status_code == 401  # the API key is no session
    login = await client.get("/ui/login")
    assert login.status_code == 200 and 'type="password"' in login.text
    assert "script-src 'self'" in login.headers["content-security-policy"]


async def test_a_wrong_key_cannot_sign_in_and_a_non_admin_key_is_refused(client: httpx.AsyncClient) -> None:
    wrong = await client.post("/ui/login", data={"key": "sk-wrong"})
    assert wrong.status_code == 401 and "Incorrect API key" in wrong.text and COOKIE not in wrong.headers.get(
        "set-cookie", "")
    plain = (await client.post("/key/generate", json={}, headers=ADMIN)).json()["key"]
    refused = await client.post("/ui/login", data={"key": plain})
    assert refused.status_code == 403 and "admin" in refused.text
    audit = (await client.get("/audit/log", headers=ADMIN)).json()["data"]
    assert any(r["action"] == "console.sign_in" and r["outcome"] == "denied" for r in audit)


async def test_every_page_and_read_endpoint_works_signed_in(client: httpx.AsyncClient) -> None:
    await _sign_in(client)
    for name in PAGES:
        resp = await client.get(f"/ui/{name}")
        assert resp.status_code == 200 and 'aria-current=page' in resp.text
        assert "$" + "time_range" not in resp.text  # every shared fragment was filled in
        assert ('<select id="hours"' in resp.text) == (name in ("overview", "routing"))  # the range picker
    for path in ("overview?hours=24", "routing", "keys", "teams", "spend?group=day", "health"):
        resp = await client.get(f"/ui/api/{path}")
        assert resp.status_code == 200, (path, resp.text)
    assert (await client.get("/ui/api/overview?hours=5")).status_code == 400
    assert (await client.get("/ui/api/spend?group=nope")).status_code == 400
    csv = await client.get("/ui/api/spend.csv?group=model")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert (await client.get("/ui/static/vendor/uPlot.iife.min.js")).status_code == 200
    assert (await client.get("/ui/static/../pages.py")).status_code == 404


async def test_mutations_need_the_csrf_token(client: httpx.AsyncClient) -> None:
    csrf = await _sign_in(client)
    body = {"key_alias": "ops", "models": ["m"], "max_budget": 5}
    assert (await client.post("/ui/api/keys", json=body)).status_code == 403
    assert (await client.post("/ui/api/keys", json=body, headers={"x-csrf-token": "x" + csrf})).status_code == 403
    made = await client.post("/ui/api/keys", json=body, headers={"x-csrf-token": csrf})
    assert made.status_code == 200 and made.json()["key"].startswith("sk-")
    key_id = made.json()["key_id"]
    assert (await client.post(f"/ui/api/keys/{key_id}/block")).status_code == 403
    blocked = await client.post(f"/ui/api/keys/{key_id}/block", headers={"x-csrf-token": csrf})
    assert blocked.status_code == 200 and blocked.json()["blocked"] is True
    listed = (await client.get("/ui/api/keys?q=ops")).json()["keys"]
    assert [k["key_id"] for k in listed] == [key_id] and listed[0]["spend"] == 0.0
    assert (await client.post(f"/ui/api/keys/{key_id}/explode", headers={"x-csrf-token": csrf})).status_code == 400
    assert (await client.post("/ui/logout")).status_code == 403  # a forged logout too
    out = await client.post("/ui/logout", data={"csrf": csrf})
    assert out.status_code == 303


async def test_a_blocked_or_regenerated_admin_key_loses_its_session(client: httpx.AsyncClient) -> None:
    made = (await client.post("/key/generate", json={"admin": True}, headers=ADMIN)).json()
    await _sign_in(client, made["key"])
    assert (await client.get("/ui/api/health")).status_code == 200
    await client.post("/key/block", json={"key": made["key_id"]}, headers=ADMIN)
    assert (await client.get("/ui/api/health")).status_code == 401
    await client.post("/key/unblock", json={"key": made["key_id"]}, headers=ADMIN)
    assert (await client.get("/ui/api/health")).status_code == 200
    await client.post("/key/regenerate", json={"key": made["key_id"]}, headers=ADMIN)
    assert (await client.get("/ui/api/health")).status_code == 401
    assert (await client.get("/ui/overview")).status_code == 303


@pytest.fixture
async def served(tmp_path: Any, upstream: ThreadedFakeUpstream) -> AsyncIterator[tuple[httpx.AsyncClient, Gateway]]:
    """The console of a gateway whose models answer (the session's fake upstream)."""
    cfg = parse_config(gateway_config(upstream.url, access={"sqlite_path": f"{tmp_path}/r.db"}))
    gateway = build_gateway(cfg, LocalProviderPool(cfg), None)
    app = create_app(gateway)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http, gateway


async def test_the_overview_counts_requests_to_a_concrete_model_with_latency_and_errors(
        served: tuple[httpx.AsyncClient, Gateway]) -> None:
    http, gateway = served
    ask = {"model": CHEAP, "max_tokens": 4}
    for prompt in ("hi [[fake latency_ms=30]]", "hi [[fake latency_ms=30]]", "hi [[fake error=500]]"):
        resp = await http.post("/v1/chat/completions", headers=ADMIN,
                               json={**ask, "messages": [{"role": "user", "content": prompt}]})
        assert resp.status_code == (502 if "error" in prompt else 200), resp.text  # upstream 500: our 502
    assert isinstance(gateway.request_stats, RequestStats)
    assert isinstance(gateway.policy, VirtualKeyPolicy)
    assert await gateway.request_stats.flush() and await gateway.policy.spend.flush()
    await _sign_in(http)
    report = (await http.get("/ui/api/overview?hours=1")).json()
    row = next(m for m in report["by_model"] if m["model"] == CHEAP)
    assert row["requests"] == 3 and row["errors"] == 1 and row["tokens"] > 0
    assert row["p50_ms"] >= 20 and row["p95_ms"] >= row["p50_ms"]  # 30 ms upstream: its bucket is 20..30 or above
    totals = report["request_totals"]
    assert totals["requests"] >= 3 and totals["errors"] >= 1  # the console's own sign-in is no model request
    assert sum(report["requests"]["requests"]) == totals["requests"]
    assert sum(report["requests"]["errors"]) == totals["errors"]
    assert report["routed_totals"]["requests"] == 0  # no router decided these
