"""The audit trail through the app, in-process (no Ray): embedded store, moto's S3.

Admin reads are audited as the admin module says, refused requests become aggregated
``access.denied`` rows, a registry pointer that moved becomes a ``router.promote`` row, and
readiness says ``degraded`` (still 200) while the export fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.audit.promotions import PromotionWatcher
from app.config import parse_config
from app.gateway import Gateway
from app.main import create_app
from app.providers.pool import LocalProviderPool
from app.wiring import build_gateway
from devtools.configs import MASTER_KEY, gateway_config
from devtools.s3_server import S3Server
from router_models.registry.store import RouterRegistry
from tests.registry_support import make_artifact, new_registry

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture
async def app(tmp_path: Path, own_s3: S3Server) -> AsyncIterator[tuple[httpx.AsyncClient, Gateway, S3Server]]:
    bucket = own_s3.new_bucket()
    audit = {"export_url": f"s3://{bucket}/audit", "endpoint_url": own_s3.url, "region": "us-east-1",
             "spool_dir": str(tmp_path / "spool"), "settle_s": 0.001, "timeout_s": 2.0}
    cfg = parse_config(gateway_config("http://127.0.0.1:1/v1", access={"sqlite_path": f"{tmp_path}/r.db"},
                                      audit=audit))
    gateway = build_gateway(cfg, LocalProviderPool(cfg), None)
    asgi = create_app(gateway)
    transport = httpx.ASGITransport(app=asgi)
    async with asgi.router.lifespan_context(asgi), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c, gateway, own_s3


async def rows(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    resp = await client.get("/audit/log", headers=ADMIN, params={"size": 500})
    assert resp.status_code == 200
    data: list[dict[str, Any]] = resp.json()["data"]
    return data


async def test_admin_reads_are_audited_without_the_raw_key(app: tuple[httpx.AsyncClient, Gateway, S3Server]) -> None:
    client, _, _ = app
    key = (await client.post("/key/generate", headers=ADMIN, json={})).json()
    assert (await client.get("/key/info", headers=ADMIN, params={"key": key["key"]})).status_code == 200
    assert (await client.get("/team/list", headers=ADMIN)).status_code == 200
    assert (await client.get("/team/info", headers=ADMIN, params={"team_id": "nope"})).status_code == 404
    logged = await rows(client)
    actions = {(r["action"], r["target"], r["outcome"]) for r in logged}
    assert ("key.info", key["key_id"], "success") in actions
    assert ("team.list", None, "success") in actions
    assert ("team.info", "nope", "team_not_found") in actions
    assert any(r["action"] == "audit.read" for r in await rows(client))  # the first read is in the second
    assert key["key"] not in str(await rows(client))


async def test_refusals_become_one_row_per_key_and_reason(app: tuple[httpx.AsyncClient, Gateway, S3Server]) -> None:
    client, gateway, _ = app
    blocked = (await client.post("/key/generate", headers=ADMIN, json={"blocked": True})).json()
    body = {"model": "tiny-model", "messages": [{"role": "user", "content": "hi"}]}
    for token in ["sk-not-a-key"] * 3 + [blocked["key"]] * 2:
        resp = await client.post("/v1/chat/completions", headers={"authorization": f"Bearer {token}"}, json=body)
        assert resp.status_code == 401
    assert gateway.audit is not None and await gateway.audit.flush_denials() == 2
    denied = {(r["actor"], r["outcome"]): r["detail"]["count"] for r in await rows(client)
              if r["action"] == "access.denied"}
    assert denied == {("anonymous", "invalid_api_key"): 3, (blocked["key_id"], "key_blocked"): 2}


async def test_readiness_degrades_while_the_export_fails_and_recovers(
        app: tuple[httpx.AsyncClient, Gateway, S3Server]) -> None:
    client, gateway, s3 = app
    assert gateway.audit is not None and gateway.audit.exporter is not None
    await client.post("/key/generate", headers=ADMIN, json={})
    s3.stop()
    await gateway.audit.exporter.run_once()
    ready = await client.get("/health/readiness")
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    detail = ready.json()["audit_export"]
    assert detail["status"] == "degraded" and detail["error"] == "AuditSinkError" and detail["spool_batches"] >= 1
    s3.start()
    await gateway.audit.exporter.run_once()
    ready = await client.get("/health/readiness")
    assert ready.json()["status"] == "ready" and ready.json()["audit_export"]["spool_batches"] == 0


async def test_a_moved_registry_pointer_becomes_one_router_promote_row(
        app: tuple[httpx.AsyncClient, Gateway, S3Server], tmp_path: Path) -> None:
    client, gateway, s3 = app
    registry: RouterRegistry = new_registry(s3)
    v1 = registry.publish(make_artifact(tmp_path / "a1", 0.1)).version
    v2 = registry.publish(make_artifact(tmp_path / "a2", 0.2)).version
    assert gateway.audit is not None and gateway.audit.store is not None
    watcher = PromotionWatcher(gateway.audit.store, {"auto": registry})
    registry.promote("auto", v1)
    assert await watcher.check() == 1
    assert await watcher.check() == 0  # unchanged: nothing new
    registry.promote("auto", v2)
    assert await PromotionWatcher(gateway.audit.store, {"auto": registry}).check() == 1  # a fresh replica too
    promoted = [r["detail"] for r in await rows(client) if r["action"] == "router.promote"]
    assert [(d["version"], d["previous"]) for d in promoted] == [(v2, v1), (v1, None)]
