"""The gateway's request path without Ray: a fake scorer and a recording provider pool."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from app.auth import Principal
from app.config import parse_config
from app.errors import PermissionDeniedError
from app.gateway import Gateway, RequestContext
from app.providers.base import ProviderCall, ProviderResult, Usage
from devtools.configs import CHEAP, MID, PRICEY, gateway_config
from router_models.inference.types import RouteDecision, RouteQuery

ADMIN = Principal("master", is_admin=True)


class RecordingPool:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ProviderCall]] = []

    async def complete(self, group: str, call: ProviderCall) -> ProviderResult:
        self.calls.append((group, call))
        return ProviderResult(b"{}", Usage(1, 1, 0.0), "m")

    def stream(self, group, call):  # pragma: no cover - not used here
        raise NotImplementedError


class FakeScorer:
    def __init__(self, behaviour: str = "ok") -> None:
        self.behaviour = behaviour
        self.queries: list[RouteQuery] = []

    async def route(self, query: RouteQuery) -> RouteDecision:
        self.queries.append(query)
        if self.behaviour == "slow":
            await asyncio.sleep(5)
        if self.behaviour == "fail":
            raise RuntimeError("scorer replica died")
        return RouteDecision(model=PRICEY, strategy="fake", lam=query.lam)


def make(scorer: FakeScorer | None, **router_overrides) -> tuple[Gateway, RecordingPool]:
    raw = gateway_config("http://127.0.0.1:1/v1")
    raw["router_settings"]["routers"][0].update(timeout_ms=50, **router_overrides)
    raw["router_settings"]["aliases"] = {"auto:cheap": {"router": "auto", "lambda": 3.0}}
    pool = RecordingPool()
    return Gateway(parse_config(raw), pool, scorer), pool


def body(model: str, **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


async def test_concrete_model_skips_the_router() -> None:
    scorer = FakeScorer()
    gw, pool = make(scorer)
    plan, _ = await gw.complete("chat", body(MID), RequestContext("r1", ADMIN))
    assert plan.decision is None and scorer.queries == []
    assert pool.calls[0][0] == "small" and pool.calls[0][1].headers["x-request-id"] == "r1"


async def test_auto_uses_the_scorer_and_reports_it() -> None:
    gw, pool = make(FakeScorer())
    plan, _ = await gw.complete("chat", body("auto"), RequestContext("r", ADMIN))
    assert plan.headers()["x-routeiq-model"] == PRICEY and plan.headers()["x-routeiq-strategy"] == "fake"
    assert pool.calls[0][0] == "large"


@pytest.mark.parametrize("behaviour", ["slow", "fail"])
async def test_scorer_down_or_slow_falls_back(behaviour: str) -> None:
    gw, _ = make(FakeScorer(behaviour))
    plan, _ = await gw.complete("chat", body("auto"), RequestContext("r", ADMIN))
    assert plan.deployment.entry.model_name == MID  # the configured fallback_model
    assert plan.decision is not None and plan.decision.fallback
    assert plan.headers()["x-routeiq-strategy"] == "fallback"


async def test_lambda_precedence_body_then_header_then_alias() -> None:
    scorer = FakeScorer()
    gw, _ = make(scorer, **{"lambda": 0.2})
    await gw.complete("chat", body("auto"), RequestContext("r", ADMIN))
    await gw.complete("chat", body("auto:cheap"), RequestContext("r", ADMIN))
    await gw.complete("chat", body("auto:cheap"), RequestContext("r", ADMIN, lam=0.7))
    await gw.complete("chat", body("auto", routeiq={"lambda": 1.5}), RequestContext("r", ADMIN, lam=0.7))
    assert [q.lam for q in scorer.queries] == [0.2, 3.0, 0.7, 1.5]


async def test_allowlist_narrows_auto_and_blocks_concrete_models() -> None:
    scorer = FakeScorer()
    gw, _ = make(scorer)
    limited = Principal("k1", allowed_models=frozenset({CHEAP, MID}))
    await gw.complete("chat", body("auto"), RequestContext("r", limited))
    assert {c.name for c in scorer.queries[0].candidates} == {CHEAP, MID}
    with pytest.raises(PermissionDeniedError):
        await gw.complete("chat", body(PRICEY), RequestContext("r", limited))


async def test_deployments_of_one_model_are_weighted() -> None:
    raw = gateway_config("http://127.0.0.1:1/v1")
    twin = {**raw["model_list"][1], "litellm_params": {**raw["model_list"][1]["litellm_params"], "weight": 3}}
    raw["model_list"][1]["litellm_params"]["weight"] = 1
    raw["model_list"].append(twin)
    pool = RecordingPool()
    gw = Gateway(parse_config(raw), pool, None)
    for _ in range(400):
        await gw.complete("chat", body(MID), RequestContext("r", ADMIN))
    counts = Counter(call.deployment for _, call in pool.calls)
    assert set(counts) == {1, len(raw["model_list"]) - 1}
    assert 2.0 < counts[len(raw["model_list"]) - 1] / counts[1] < 4.5


async def test_router_never_sees_a_model_whose_deployments_all_cool_down() -> None:
    scorer = FakeScorer()
    gw, _ = make(scorer)
    mid = gw.catalog.deployments[MID][0].index
    gw.cooldowns.mark(mid, 30)  # type: ignore[attr-defined]  (LocalCooldowns)
    await gw.complete("chat", body("auto"), RequestContext("r", ADMIN))
    assert MID not in {c.name for c in scorer.queries[0].candidates}


def test_retry_waits_at_least_the_upstreams_retry_after() -> None:
    from tenacity import RetryCallState

    from app.providers.caller import MAX_BACKOFF_S, _HonourRetryAfter
    from app.providers.errors import RetryableUpstreamError

    def state(err: Exception) -> RetryCallState:
        s = RetryCallState(None, None, (), {})
        s.attempt_number = 1
        s.set_exception((type(err), err, None))
        return s

    wait = _HonourRetryAfter(initial=0.01)
    assert wait(state(RetryableUpstreamError("x", retry_after=1.5))) >= 1.5
    assert wait(state(RetryableUpstreamError("x", retry_after=60))) == MAX_BACKOFF_S  # capped
    assert wait(state(RetryableUpstreamError("x"))) < 0.5
