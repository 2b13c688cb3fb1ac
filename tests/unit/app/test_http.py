"""``app.http``: request ids echoed by the plain app (left to the proxy behind Serve), and request
bodies read with bounded memory (streamed bodies counted and cut at the limit, depth capped)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest

from app.config import parse_config
from app.http import MAX_JSON_DEPTH, too_deep
from app.main import create_app
from app.providers.pool import LocalProviderPool
from app.wiring import build_gateway
from devtools.configs import CHEAP, MASTER_KEY, gateway_config

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


@asynccontextmanager
async def _client(upstream: Any, echo: bool) -> AsyncIterator[httpx.AsyncClient]:
    cfg = parse_config(gateway_config(upstream.url, access={"enabled": False}, decisions={"enabled": False}))
    pool = LocalProviderPool(cfg)
    app = create_app(build_gateway(cfg, pool, None), echo_request_id=echo)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        yield client
    await pool.close()


@pytest.fixture
async def echoing(upstream: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(upstream, echo=True) as client:
        yield client


@pytest.fixture
async def behind_proxy(upstream: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(upstream, echo=False) as client:
        yield client


async def test_the_callers_id_comes_back_on_success_and_on_errors(echoing: httpx.AsyncClient) -> None:
    ok = await echoing.get("/v1/models", headers={**AUTH, "x-request-id": "caller-id-1"})
    denied = await echoing.get("/v1/models", headers={"authorization": "Bearer wrong", "x-request-id": "caller-id-2"})
    assert (ok.status_code, ok.headers["x-request-id"]) == (200, "caller-id-1")
    assert (denied.status_code, denied.headers["x-request-id"]) == (401, "caller-id-2")


async def test_an_unsafe_or_missing_id_is_replaced_by_a_fresh_one(echoing: httpx.AsyncClient) -> None:
    unsafe = await echoing.get("/v1/models", headers={**AUTH, "x-request-id": "bad id\twith spaces"})
    missing = await echoing.get("/v1/models", headers=AUTH)
    ids = {unsafe.headers["x-request-id"], missing.headers["x-request-id"]}
    assert len(ids) == 2 and all(len(i) == 32 for i in ids)


async def test_behind_a_proxy_the_app_adds_no_second_header(behind_proxy: httpx.AsyncClient) -> None:
    ok = await behind_proxy.get("/v1/models", headers={**AUTH, "x-request-id": "caller-id-3"})
    denied = await behind_proxy.get("/v1/models", headers={"authorization": "Bearer wrong"})
    assert ok.status_code == 200 and "x-request-id" not in ok.headers
    assert denied.status_code == 401 and "x-request-id" not in denied.headers


JSON_AUTH = {"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"}
LIMIT = 65536  # devtools.configs.gateway_config's max_request_body_bytes


@pytest.fixture
async def client(upstream: Any) -> AsyncIterator[httpx.AsyncClient]:
    cfg = parse_config(gateway_config(upstream.url, access={"enabled": False}, decisions={"enabled": False}))
    pool = LocalProviderPool(cfg)
    app = create_app(build_gateway(cfg, pool, None))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as c:
        yield c
    await pool.close()


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


async def test_a_chunked_body_is_cut_at_the_limit_without_reading_the_rest(client: httpx.AsyncClient) -> None:
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(1000):  # 16 MB offered
            pulled += 1
            yield b" " * 16384

    resp = await client.post("/v1/chat/completions", content=body(), headers=JSON_AUTH)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "request_too_large"
    assert pulled <= LIMIT // 16384 + 2  # stopped at the limit, not after buffering everything


async def test_a_chunked_body_within_the_limit_is_served(client: httpx.AsyncClient) -> None:
    raw = orjson.dumps({"model": CHEAP, "messages": [{"role": "user", "content": "hi"}]})

    async def body() -> AsyncIterator[bytes]:
        for i in range(0, len(raw), 7):
            yield raw[i:i + 7]

    resp = await client.post("/v1/chat/completions", content=body(), headers=JSON_AUTH)
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(("depth", "status"), [(MAX_JSON_DEPTH - 3, 200), (MAX_JSON_DEPTH - 2, 400), (200, 400)])
async def test_nesting_deeper_than_the_limit_is_a_400(client: httpx.AsyncClient, depth: int, status: int) -> None:
    # body (1) > messages (2) > message (3), then `depth` nested lists
    body = {"model": CHEAP, "messages": [{"role": "user", "content": "hi", "extra": nested(depth)}]}
    resp = await client.post("/v1/chat/completions", content=orjson.dumps(body), headers=JSON_AUTH)
    assert resp.status_code == status, resp.text
    if status == 400:
        assert resp.json()["error"]["code"] == "too_deep" and "nested deeper" in resp.json()["error"]["message"]


def test_too_deep_counts_levels_and_skips_flat_bodies() -> None:
    assert not too_deep(nested(32), orjson.dumps(nested(32)))
    assert too_deep(nested(33), orjson.dumps(nested(33)))
    wide = {"a": [{"b": [1]} for _ in range(100)]}
    assert not too_deep(wide, orjson.dumps(wide))
    assert not too_deep(nested(40), b"{}")  # the byte count alone clears a body with few brackets
