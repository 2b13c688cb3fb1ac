"""``x-request-id`` on responses: echoed by the plain app, left to the proxy behind Serve."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from app.config import parse_config
from app.main import create_app
from app.providers.pool import LocalProviderPool
from app.wiring import build_gateway
from devtools.configs import MASTER_KEY, gateway_config

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
