"""``/router/info``: the answering scorer replica's routers plus every replica's report in
Redis (real Redis; the scorer is a fake of the ``RouterClient`` protocol)."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import redis.asyncio as aioredis

from app.config import parse_config
from app.gateway.router_info import RouterInfo
from app.main import create_app
from app.providers.pool import LocalProviderPool
from app.router_replicas import ReplicaStates
from app.wiring import build_gateway
from devtools.configs import MASTER_KEY, MID, gateway_config
from devtools.services import RedisServer
from router_models.inference.types import RouteDecision, RouteQuery

LOADED = {"version": "v7", "sha256": "ab" * 32, "loaded_at": 1.5, "models": ["m1"], "default_lambda": 0.19,
          "last_error": None, "healthy": True, "artifact": "/cache/abab"}


class Scorer:
    """A scorer replica that answers ``info`` (or is down)."""

    def __init__(self, up: bool = True) -> None:
        self.up = up

    async def route(self, query: RouteQuery) -> RouteDecision:
        return RouteDecision(model=MID, strategy="fake")

    async def info(self) -> dict[str, Any]:
        if not self.up:
            raise ConnectionError("scorer down")
        return {"replica": "r1", "routers": {"auto": LOADED}}


def _cfg(**general: Any) -> Any:
    return parse_config(gateway_config("http://127.0.0.1:1/v1", access={"enabled": False}, **general))


async def test_each_replica_reported_in_redis_is_listed(redis_server: RedisServer) -> None:
    client = aioredis.from_url(redis_server.url())
    states = ReplicaStates(client, f"rqt-{secrets.token_hex(4)}", ttl_s=60)
    await states.report("r1", {"auto": {**LOADED}})
    await states.report("r2", {"auto": {**LOADED, "version": "v6", "healthy": False, "last_error": "boom"}})
    report = await RouterInfo(_cfg(), Scorer(), states).report()
    auto = report["routers"]["auto"]
    assert (auto["version"], auto["sha256"], auto["default_lambda"]) == ("v7", "ab" * 32, 0.19)
    assert [(r["replica"], r["version"], r["last_error"]) for r in auto["replicas"]] == [
        ("r1", "v7", None), ("r2", "v6", "boom")]
    assert report["replicas_source"] == "redis"
    assert report["routers"]["shuffle"]["replicas"] == []  # not a registry router: nothing reported
    await client.aclose()


async def test_without_redis_the_answering_replica_is_listed_and_a_down_scorer_is_reported() -> None:
    report = await RouterInfo(_cfg(), Scorer(), None).report()
    assert [r["replica"] for r in report["routers"]["auto"]["replicas"]] == ["r1"]
    assert "no redis" in report["replicas_source"]
    down = await RouterInfo(_cfg(), Scorer(up=False), None).report()
    assert down["scorer_error"] == "ConnectionError" and down["routers"]["auto"]["version"] is None


async def test_the_route_needs_the_admin_key() -> None:
    cfg = _cfg()
    app = create_app(build_gateway(cfg, LocalProviderPool(cfg), Scorer()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        assert (await http.get("/router/info")).status_code == 401
        assert (await http.get("/router/info", headers={"authorization": "Bearer sk-wrong"})).status_code == 401
        ok = await http.get("/router/info", headers={"authorization": f"Bearer {MASTER_KEY}"})
        assert ok.status_code == 200 and ok.json()["routers"]["auto"]["version"] == "v7"
        assert ok.json()["routers"]["auto"]["candidate_models"] == ["tiny-model", "mid-model", "big-model",
                                                                   "via-litellm"]


async def test_readiness_counts_failing_syncs_without_their_messages(redis_server: RedisServer) -> None:
    client = aioredis.from_url(redis_server.url())
    states = ReplicaStates(client, f"rqt-{secrets.token_hex(4)}", ttl_s=60)
    await states.report("r1", {"auto": {**LOADED}})
    await states.report("r2", {"auto": {**LOADED, "version": "v6", "healthy": False,
                                        "last_error": "RegistryError: http://minio.internal:9000 unreachable"}})
    cfg = gateway_config("http://127.0.0.1:1/v1", access={"enabled": False})
    cfg["router_settings"]["routers"][0].update(strategy="learned", artifact="s3://routers/prod")
    detail = await RouterInfo(parse_config(cfg), Scorer(), states).sync_detail()
    assert detail == {"auto": {"versions": ["v6", "v7"], "replicas": 2, "sync_failing": 1}}
    assert await RouterInfo(_cfg(), Scorer(), states).sync_detail() is None  # no registry router: no call
    await client.aclose()


class CountingScorer(Scorer):
    """Knows ``mid-model`` only, as a learned artifact trained on other models would."""

    def __init__(self, up: bool = True) -> None:
        super().__init__(up)
        self.asked = 0

    async def info(self) -> dict[str, Any]:
        self.asked += 1
        answer = await super().info()
        answer["routers"]["auto"] = {**LOADED, "models": ["mid-model", "big-model"]}
        return answer


def _profiled_cfg() -> Any:
    cfg = gateway_config("http://127.0.0.1:1/v1", access={"enabled": False})
    cfg["model_list"][0]["model_info"]["router_profile"] = "mid-model"  # tiny-model scored as mid-model
    return parse_config(cfg)


async def test_router_info_and_readiness_name_the_candidates_the_artifact_cannot_score() -> None:
    scorer = CountingScorer()
    info = RouterInfo(_profiled_cfg(), scorer, None)
    coverage = (await info.report())["routers"]["auto"]["coverage"]
    assert coverage == {"scored": ["mid-model", "big-model"], "via_profile": {"tiny-model": "mid-model"},
                        "unknown": ["via-litellm"], "bad_profile": {}}
    detail = await info.coverage_detail()
    assert detail == {"auto": {"unknown": ["via-litellm"], "scored": 2, "via_profile": 1}}
    asked = scorer.asked
    await info.coverage_detail()
    assert scorer.asked == asked  # readiness reuses the answer for COVERAGE_TTL_S, not a call per probe


async def test_readiness_coverage_is_silent_before_the_scorer_answers_and_when_all_are_scored() -> None:
    assert await RouterInfo(_profiled_cfg(), CountingScorer(up=False), None).coverage_detail() is None
    cfg = gateway_config("http://127.0.0.1:1/v1", access={"enabled": False})
    cfg["router_settings"]["routers"][0]["candidates"] = ["mid-model", "big-model"]
    assert await RouterInfo(parse_config(cfg), CountingScorer(), None).coverage_detail() is None


async def test_the_readiness_probe_reports_router_coverage() -> None:
    cfg = _profiled_cfg()
    app = create_app(build_gateway(cfg, LocalProviderPool(cfg), CountingScorer()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        ready = await http.get("/health/readiness")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["router_coverage"]["auto"]["unknown"] == ["via-litellm"]
