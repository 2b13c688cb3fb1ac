"""A deployed gateway app as tests drive it: admin calls, spend rows and decision rows.

Shared by the integration tests that deploy their own embedded (SQLite) gateway app
(test_litellm_dropin.py, test_anthropic_messages.py): rows are read back by request id,
waiting (with a generous deadline) for the flushers that write them off the response path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from app.access.db import async_db_url
from app.access.decision_store import DecisionStore
from devtools.configs import CHEAP, MASTER_KEY, MID
from tests.access_support import access_general

SMALL = {"ray_actor_options": {"num_cpus": 0.05}}
PRICE = {CHEAP: 0.1e-6, MID: 0.5e-6}


def two_model_config(upstream: str, general: dict[str, Any], group: str,
                     capabilities: list[str] | None = None) -> dict[str, Any]:
    """A cheap and a mid model in one provider group, and ``auto`` (cost-first, falling back to mid)."""
    def entry(name: str) -> dict[str, Any]:
        info: dict[str, Any] = {"input_cost_per_token": PRICE[name], "output_cost_per_token": PRICE[name]}
        if capabilities:
            info["capabilities"] = capabilities
        return {"model_name": name, "provider_group": group,
                "litellm_params": {"model": f"openai/{name}", "api_base": upstream, "api_key": "sk-up"},
                "model_info": info}

    return {
        "model_list": [entry(CHEAP), entry(MID)],
        "router_settings": {"routers": [{"name": "auto", "strategy": "cost-first", "fallback_model": MID,
                                         "scoring": "replica"}],  # not its default: these apps have the hop
                            "num_retries": 0},
        "general_settings": {"master_key": MASTER_KEY, "request_timeout_s": 10,
                             "decisions": {"flush_interval_s": 0.2}, **general},
    }


def deploy_app(deploy_gateway: Callable[..., str], upstream_url: str, tmp: str, name: str,
               capabilities: list[str] | None = None, extra_models: list[dict[str, Any]] | None = None) -> App:
    """``two_model_config`` (plus ``extra_models``) as an embedded (SQLite) app under ``/name``,
    on small CPU shares."""
    overrides = {"Ingress": SMALL, f"Provider-{name}": SMALL, "RouterScoring": SMALL}
    config = two_model_config(upstream_url, access_general("embedded", tmp), name, capabilities)
    config["model_list"] += extra_models or []
    url = deploy_gateway(config, name=name, route_prefix=f"/{name}", overrides=overrides)
    return App(url, f"sqlite:///{tmp}/routeiq.db")


def decision_rows(db_url: str) -> dict[str, dict[str, Any]]:
    """Every decision row in the app's database, by request id (a fresh engine: tests run sync)."""
    async def read() -> dict[str, dict[str, Any]]:
        engine = create_async_engine(async_db_url(db_url))
        try:
            return {r["request_id"]: r async for r in DecisionStore(engine).rows()}
        finally:
            await engine.dispose()

    return asyncio.run(read())


class App:
    """One deployed app: its base URL (without `/v1`), an admin HTTP client and its database."""

    def __init__(self, url: str, db_url: str) -> None:
        self.base = url.removesuffix("/v1")
        self.db_url = db_url
        self.http = httpx.Client(base_url=self.base, timeout=30)
        self.admin = {"authorization": f"Bearer {MASTER_KEY}"}

    def new_key(self) -> str:
        resp = self.http.post("/key/generate", json={}, headers=self.admin)
        assert resp.status_code == 200, resp.text
        return str(resp.json()["key"])

    def stream(self, model: str, text: str, **body: Any) -> tuple[str, bytes]:
        """A raw streamed chat: its request id and the bytes the client received."""
        payload = {"model": model, "messages": [{"role": "user", "content": text}], "stream": True, **body}
        with self.http.stream("POST", "/v1/chat/completions", json=payload, headers=self.admin) as resp:
            raw = resp.read()
        assert resp.status_code == 200, raw
        return resp.headers["x-request-id"], raw

    def spend_row(self, rid: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            resp = self.http.get("/spend/logs", params={"request_id": rid}, headers=self.admin)
            assert resp.status_code == 200, resp.text
            if rows := resp.json()["data"]:
                assert len(rows) == 1
                return dict(rows[0])
            assert time.monotonic() < deadline, f"no spend row for {rid}"
            time.sleep(0.2)

    def decision_row(self, rid: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (row := decision_rows(self.db_url).get(rid)) is None:
            assert time.monotonic() < deadline, f"no decision row for {rid}"
            time.sleep(0.2)
        return row


ROUTER_DEADLINE_MS = 10_000
"""The routing deadline of a test router that sets none. The product's default (250 ms)
expires on a loaded 2-core CI machine, and the request then falls back to the router's
``fallback_model``: right in production, but a test that checks what the router chose
would see the fallback instead (seen in CI). Fallback on a deadline is tested on purpose,
with routers that set ``timeout_ms: 0.001``."""


def with_patient_routers(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with ``ROUTER_DEADLINE_MS`` for every router that sets no ``timeout_ms``."""
    settings = config.get("router_settings") or {}
    routers = [{"timeout_ms": ROUTER_DEADLINE_MS, **r} for r in settings.get("routers") or []]
    return {**config, "router_settings": {**settings, "routers": routers}} if routers else config
