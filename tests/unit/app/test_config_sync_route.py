"""``GET /config/sync/status``: the master key reads it (a file source here), another key gets a
403 that is audited, and a gateway without a sync source says so with a 404."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from app.config import parse_config
from app.main import create_app
from app.providers.pool import LocalProviderPool
from app.wiring import build_gateway
from devtools.configs import MASTER_KEY, gateway_config

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


async def _get(raw: dict[str, Any], *, as_key: bool = False) -> httpx.Response:
    cfg = parse_config(raw)
    gateway = build_gateway(cfg, LocalProviderPool(cfg), None)
    app = create_app(gateway)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        headers = ADMIN
        if as_key:
            key = (await http.post("/key/generate", json={}, headers=ADMIN)).json()["key"]
            headers = {"authorization": f"Bearer {key}"}
        resp = await http.get("/config/sync/status", headers=headers)
        if as_key:
            audit = (await http.get("/audit/log", headers=ADMIN)).json()["data"]
            assert [r["outcome"] for r in audit if r["action"] == "config.sync.status"] == ["denied"]
        return resp


def _raw(tmp_path: Path, source: str | None) -> dict[str, Any]:
    raw = gateway_config("http://127.0.0.1:1/v1", access={"sqlite_path": f"{tmp_path}/r.db"})
    raw["general_settings"]["config_sync"] = {"source": source}
    return raw


async def test_the_master_key_reads_the_status(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    raw = _raw(tmp_path, str(path))
    path.write_text(yaml.safe_dump(raw))
    resp = await _get(raw)
    assert resp.status_code == 200
    body = resp.json()
    assert body["source"] == str(path) and body["applied"]["hash"] and body["replicas"][0]["replica"] == body["replica"]


async def test_another_key_is_refused_and_audited(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    raw = _raw(tmp_path, str(path))
    path.write_text(yaml.safe_dump(raw))
    resp = await _get(raw, as_key=True)
    assert resp.status_code == 403 and resp.json()["error"]["type"] == "permission_error"


async def test_without_a_source_the_status_is_a_404(tmp_path: Path) -> None:
    resp = await _get(_raw(tmp_path, None))
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "config_sync_off"
