"""``/v1/models/{id}`` and the unprefixed OpenAI routes, in-process (no Ray, no upstream call)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.config import parse_config
from app.main import create_app
from app.providers.pool import LocalProviderPool
from app.wiring import build_gateway
from devtools.configs import MASTER_KEY, MID, gateway_config

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture
async def client(tmp_path: Any) -> AsyncIterator[httpx.AsyncClient]:
    cfg = parse_config(gateway_config("http://127.0.0.1:1/v1", access={"sqlite_path": f"{tmp_path}/r.db"}))
    app = create_app(build_gateway(cfg, LocalProviderPool(cfg), None))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


@pytest.mark.parametrize("prefix", ["/v1", ""])
async def test_models_and_one_model_with_and_without_the_prefix(client: httpx.AsyncClient, prefix: str) -> None:
    listed = await client.get(f"{prefix}/models", headers=ADMIN)
    assert listed.status_code == 200 and MID in {m["id"] for m in listed.json()["data"]}
    one = await client.get(f"{prefix}/models/{MID}", headers={"x-api-key": MASTER_KEY})
    assert one.status_code == 200 and one.json() == {"id": MID, "object": "model", "created": 0, "owned_by": "routeiq"}


async def test_an_unknown_model_is_an_openai_404_that_echoes_at_most_256_characters(client: httpx.AsyncClient) -> None:
    resp = await client.get("/models/" + "x" * 5000, headers=ADMIN)
    assert resp.status_code == 404
    error = resp.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", "model", "model_not_found")
    assert "x" * 256 in error["message"] and "x" * 257 not in error["message"]


@pytest.mark.parametrize("path", ["/chat/completions", "/completions", "/embeddings"])
async def test_unprefixed_inference_routes_exist_and_validate(client: httpx.AsyncClient, path: str) -> None:
    refused = await client.post(path, json={})
    assert refused.status_code == 401  # the route exists: it authenticates
    bad = await client.post(path, json={"model": MID}, headers={"api-key": MASTER_KEY})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
