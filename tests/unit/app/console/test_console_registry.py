"""The console's registry panel against a real S3-compatible server (moto): versions, promote,
rollback, each behind the CSRF token and audited; the same pointer moves as ``routeiq promote``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import parse_config
from app.main import create_app
from app.providers.pool import LocalProviderPool
from app.wiring import build_gateway
from devtools.configs import MASTER_KEY, MID, gateway_config
from devtools.s3_server import S3Server
from tests.registry_support import default_variant, new_registry

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture
async def console(tmp_path: Path, s3_server: S3Server) -> AsyncIterator[tuple[httpx.AsyncClient, str, Any]]:
    registry = new_registry(s3_server)
    for i, lam in enumerate((0.1, 0.3)):
        registry.publish(default_variant(tmp_path / f"v{i}", lam))
    registry.promote("auto", "v1")
    raw = gateway_config("http://127.0.0.1:1/v1", access={"sqlite_path": f"{tmp_path}/r.db"})
    raw["router_settings"]["routers"][0] = {"name": "auto", "strategy": "learned", "artifact": str(registry.location),
                                            "fallback_model": MID}
    raw["router_settings"]["registry"] = {"endpoint_url": s3_server.url, "region": "us-east-1"}
    cfg = parse_config(raw)
    app = create_app(build_gateway(cfg, LocalProviderPool(cfg), None))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        await http.post("/ui/login", data={"key": MASTER_KEY})
        page = (await http.get("/ui/routing")).text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert csrf
        yield http, csrf.group(1), registry


async def test_versions_promote_and_rollback(console: tuple[httpx.AsyncClient, str, Any]) -> None:
    http, csrf, registry = console
    assert (await http.get("/ui/api/routing")).json()["registry_routers"] == ["auto"]
    shown = (await http.get("/ui/api/registry/auto")).json()
    assert (shown["current"], [v["version"] for v in shown["versions"]]) == ("v1", ["v2", "v1"])
    assert shown["versions"][0]["default_lambda"] == 0.3

    assert (await http.post("/ui/api/registry/auto/promote", json={"version": "v2"})).status_code == 403
    assert registry.pointer("auto").current == "v1"  # refused without the CSRF token: nothing moved
    moved = await http.post("/ui/api/registry/auto/promote", json={"version": "v2"}, headers={"x-csrf-token": csrf})
    assert moved.status_code == 200 and moved.json() == {"router": "auto", "current": "v2", "previous": "v1"}
    assert registry.pointer("auto").current == "v2"

    back = await http.post("/ui/api/registry/auto/rollback", headers={"x-csrf-token": csrf})
    assert back.status_code == 200 and registry.pointer("auto").current == "v1"
    missing = await http.post("/ui/api/registry/auto/promote", json={"version": "v9"}, headers={"x-csrf-token": csrf})
    assert missing.status_code == 400 and registry.pointer("auto").current == "v1"
    assert (await http.get("/ui/api/registry/shuffle")).status_code == 404  # follows no registry

    audit = (await http.get("/audit/log", headers=ADMIN)).json()["data"]
    assert {(r["action"], r["outcome"]) for r in audit} >= {("router.promote", "success"),
                                                            ("router.rollback", "success")}
