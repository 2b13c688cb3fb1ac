"""The gateway's core without Ray: resolving, routing, fallbacks, with a fake scorer and a recording pool."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from app.auth import Principal
from app.config import parse_config
from app.errors import PermissionDeniedError
from app.gateway import Gateway, RequestContext
from app.providers.base import ProviderCall, ProviderResult, Usage
from app.schemas.openai import ChatCompletionRequest, Steering
from app.wiring import build_gateway
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

    async def close(self) -> None:
        return None


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
        if self.behaviour == "undecided":  # this query alone failed in the scorer's batch
            return RouteDecision(model="", strategy="learned", error="ValueError: lam must be finite", lam=query.lam)
        return RouteDecision(model=PRICEY, strategy="fake", lam=query.lam)


NO_STORES = {"access": {"enabled": False}, "decisions": {"enabled": False}}


def make(scorer: FakeScorer | None, **router_overrides) -> tuple[Gateway, RecordingPool]:
    raw = gateway_config("http://127.0.0.1:1/v1", **NO_STORES)
    raw["router_settings"]["routers"][0].update(timeout_ms=50, **router_overrides)
    raw["router_settings"]["aliases"] = {"auto:cheap": {"router": "auto", "lambda": 3.0}}
    pool = RecordingPool()
    return build_gateway(parse_config(raw), pool, scorer), pool


def body(model: str, **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


def request(raw: dict, principal: Principal, rid: str = "r", lam: float | None = None) -> tuple[dict, RequestContext]:
    """The body and its context, steered by the validated request as the routes do."""
    steering = Steering.of(ChatCompletionRequest.model_validate(raw))
    return raw, RequestContext(rid, principal, steering, lam=lam)


async def test_concrete_model_skips_the_router() -> None:
    scorer = FakeScorer()
    gw, pool = make(scorer)
    plan, _ = await gw.complete("chat", *request(body(MID), ADMIN, "r1"))
    assert plan.decision is None and scorer.queries == []
    assert pool.calls[0][0] == "small" and pool.calls[0][1].headers["x-request-id"] == "r1"


async def test_auto_uses_the_scorer_and_reports_it() -> None:
    gw, pool = make(FakeScorer())
    plan, _ = await gw.complete("chat", *request(body("auto"), ADMIN, "r"))
    assert plan.headers()["x-routeiq-model"] == PRICEY and plan.headers()["x-routeiq-strategy"] == "fake"
    assert pool.calls[0][0] == "large"


@pytest.mark.parametrize("behaviour", ["slow", "fail", "undecided"])
async def test_scorer_down_or_slow_falls_back(behaviour: str) -> None:
    gw, _ = make(FakeScorer(behaviour))
    plan, _ = await gw.complete("chat", *request(body("auto"), ADMIN, "r"))
    assert plan.deployment.entry.model_name == MID  # the configured fallback_model
    assert plan.decision is not None and plan.decision.fallback
    assert plan.headers()["x-routeiq-strategy"] == "fallback"


async def test_lambda_precedence_body_then_header_then_alias() -> None:
    scorer = FakeScorer()
    gw, _ = make(scorer, **{"lambda": 0.2})
    await gw.complete("chat", *request(body("auto"), ADMIN, "r"))
    await gw.complete("chat", *request(body("auto:cheap"), ADMIN, "r"))
    await gw.complete("chat", *request(body("auto:cheap"), ADMIN, "r", lam=0.7))
    await gw.complete("chat", *request(body("auto", routeiq={"lambda": 1.5}), ADMIN, "r", lam=0.7))
    assert [q.lam for q in scorer.queries] == [0.2, 3.0, 0.7, 1.5]


async def test_allowlist_narrows_auto_and_blocks_concrete_models() -> None:
    scorer = FakeScorer()
    gw, _ = make(scorer)
    limited = Principal("k1", allowed_models=frozenset({CHEAP, MID}))
    await gw.complete("chat", *request(body("auto"), limited, "r"))
    assert {c.name for c in scorer.queries[0].candidates} == {CHEAP, MID}
    with pytest.raises(PermissionDeniedError):
        await gw.complete("chat", *request(body(PRICEY), limited, "r"))


async def test_deployments_of_one_model_are_weighted() -> None:
    raw = gateway_config("http://127.0.0.1:1/v1", **NO_STORES)
    twin = {**raw["model_list"][1], "litellm_params": {**raw["model_list"][1]["litellm_params"], "weight": 3}}
    raw["model_list"][1]["litellm_params"]["weight"] = 1
    raw["model_list"].append(twin)
    pool = RecordingPool()
    gw = build_gateway(parse_config(raw), pool, None)
    for _ in range(400):
        await gw.complete("chat", *request(body(MID), ADMIN, "r"))
    counts = Counter(call.deployment for _, call in pool.calls)
    assert set(counts) == {1, len(raw["model_list"]) - 1}
    assert 2.0 < counts[len(raw["model_list"]) - 1] / counts[1] < 4.5


async def test_router_never_sees_a_model_whose_deployments_all_cool_down() -> None:
    scorer = FakeScorer()
    gw, _ = make(scorer)
    mid = gw.catalog.deployments[MID][0].index
    gw.cooldowns.mark(mid, 30)  # type: ignore[attr-defined]  (LocalCooldowns)
    await gw.complete("chat", *request(body("auto"), ADMIN, "r"))
    assert MID not in {c.name for c in scorer.queries[0].candidates}


async def test_router_fallback_stays_inside_the_allowlist() -> None:
    gw, pool = make(FakeScorer("fail"))  # the configured fallback_model is MID
    limited = Principal("k1", allowed_models=frozenset({CHEAP, PRICEY}))
    plan, _ = await gw.complete("chat", *request(body("auto"), limited, "r"))
    assert plan.model == CHEAP  # the cheapest model this key may use, not MID
    assert [c.deployment for _, c in pool.calls] == [gw.catalog.deployments[CHEAP][0].index]


class HungPool(RecordingPool):
    async def complete(self, group: str, call: ProviderCall) -> ProviderResult:
        self.calls.append((group, call))
        await asyncio.sleep(3600)  # a provider replica that never answers
        raise AssertionError("unreachable")


async def test_a_provider_that_never_answers_is_a_504_not_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.errors import UpstreamTimeoutError
    from app.gateway import core

    monkeypatch.setattr(core, "HANDLE_MARGIN_S", 0.05)
    raw = gateway_config("http://127.0.0.1:1/v1", **NO_STORES)
    raw["general_settings"]["request_timeout_s"] = 0.05
    pool = HungPool()
    gw = build_gateway(parse_config(raw), pool, None)
    with pytest.raises(UpstreamTimeoutError, match="provider deployment"):
        await gw.complete("chat", *request(body(MID), ADMIN, "r"))


class FailingPool(RecordingPool):
    async def complete(self, group: str, call: ProviderCall) -> ProviderResult:
        self.calls.append((group, call))
        from app.errors import UpstreamError

        raise UpstreamError("down")


@pytest.mark.parametrize(("allowed", "text", "tried"), [
    (None, "hi", [MID, CHEAP, PRICEY]),
    (frozenset({MID, CHEAP}), "hi", [MID, CHEAP]),  # PRICEY: not this key's
    (None, "word " * 400, [MID, PRICEY]),  # CHEAP's 64-token window: this request does not fit
])
async def test_a_fallback_chain_stays_inside_the_allowlist_and_what_fits(allowed, text: str, tried: list) -> None:
    from app.errors import UpstreamError

    raw = gateway_config("http://127.0.0.1:1/v1", **NO_STORES)
    raw["router_settings"]["fallbacks"] = [{MID: [CHEAP, PRICEY]}]
    pool = FailingPool()
    gw = build_gateway(parse_config(raw), pool, None)
    with pytest.raises(UpstreamError):
        await gw.complete("chat", *request(body(MID) | {"messages": [{"role": "user", "content": text}]},
                                          Principal("k", allowed_models=allowed)))
    names = {d.index: n for n, deps in gw.catalog.deployments.items() for d in deps}
    assert [names[c.deployment] for _, c in pool.calls] == tried


class DyingReplicaPool(RecordingPool):
    """The first ``deaths`` calls land on a replica that dies."""

    def __init__(self, deaths: int) -> None:
        super().__init__()
        self.deaths = deaths

    async def complete(self, group: str, call: ProviderCall) -> ProviderResult:
        from app.errors import ReplicaUnavailableError

        self.calls.append((group, call))
        if len(self.calls) <= self.deaths:
            raise ReplicaUnavailableError("Provider: a replica is unavailable", retry_after=1.0)
        return ProviderResult(b"{}", Usage(1, 1, 0.0), "m")


@pytest.mark.parametrize(("deaths", "served_by"), [(1, MID), (2, PRICEY)])
async def test_a_dead_provider_replica_is_retried_then_falls_back(deaths: int, served_by: str) -> None:
    raw = gateway_config("http://127.0.0.1:1/v1", **NO_STORES)
    raw["router_settings"]["fallbacks"] = [{MID: [PRICEY]}]
    pool = DyingReplicaPool(deaths)
    gw = build_gateway(parse_config(raw), pool, None)
    plan, _ = await gw.complete("chat", *request(body(MID), ADMIN))
    assert plan.model == served_by  # once more on a live replica; then the fallback chain
    assert not gw.cooldowns.cooling()  # a dead replica is not the upstream's failure


async def test_with_no_live_replica_anywhere_the_answer_is_a_503() -> None:
    from app.errors import ReplicaUnavailableError

    gw, _ = make(None)
    gw._providers = DyingReplicaPool(99)  # type: ignore[assignment]
    with pytest.raises(ReplicaUnavailableError) as info:
        await gw.complete("chat", *request(body(MID), ADMIN))
    assert info.value.status == 503


class CountingMetrics:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def router_fallback(self, *, router: str, reason: str) -> None:
        self.reasons.append(reason)

    def __getattr__(self, name: str):  # every other metric: ignored
        return lambda **kw: None


async def test_a_dead_scorer_is_skipped_at_once_and_readiness_says_so() -> None:
    from app.errors import ReplicaUnavailableError

    class DeadScorer(FakeScorer):
        async def route(self, query: RouteQuery) -> RouteDecision:
            self.queries.append(query)
            raise ReplicaUnavailableError("router-scoring: a replica is unavailable")

    scorer, metrics = DeadScorer(), CountingMetrics()
    raw = gateway_config("http://127.0.0.1:1/v1", **NO_STORES)
    gw = build_gateway(parse_config(raw), RecordingPool(), scorer, metrics=metrics)  # type: ignore[arg-type]
    for _ in range(5):
        plan, _ = await gw.complete("chat", *request(body("auto"), ADMIN))
        assert plan.decision is not None and plan.decision.fallback
    assert len(scorer.queries) == 1  # the breaker skips a dead scorer: no request waits for it
    assert metrics.reasons == ["unavailable"] * 5
    health = await gw.health()
    assert health["router_scoring"]["status"] == "down"
