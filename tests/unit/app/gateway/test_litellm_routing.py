"""A LiteLLM-shaped model list through the gateway's core, without Ray: wildcards, model group
aliases, per-deployment rpm, context-window / content-policy fallbacks, cost-map candidates."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from app.auth import Principal
from app.config import parse_config
from app.errors import InvalidRequestError, NotFoundError, RateLimitError
from app.gateway import Gateway, RequestContext
from app.providers.base import ProviderCall, ProviderResult, Usage
from app.schemas.openai import ChatCompletionRequest, Steering
from app.wiring import build_gateway

ADMIN = Principal("master", is_admin=True)
UP = "http://127.0.0.1:1/v1"
NO_STORES = {"access": {"enabled": False}, "decisions": {"enabled": False}}


class Pool:
    """Records calls; ``refuse`` maps a deployment index to the upstream 400 code it answers with."""

    def __init__(self, refuse: dict[int, str] | None = None) -> None:
        self.calls: list[ProviderCall] = []
        self.refuse = refuse or {}

    async def complete(self, group: str, call: ProviderCall) -> ProviderResult:
        self.calls.append(call)
        if (code := self.refuse.get(call.deployment)) is not None:
            raise InvalidRequestError("the upstream rejected the request", code=code)
        return ProviderResult(b"{}", Usage(1, 1, 0.0), "m")

    def stream(self, group: str, call: ProviderCall) -> Any:  # pragma: no cover - not used here
        raise NotImplementedError

    async def close(self) -> None:
        return None


def entry(name: str, model: str, **params: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": model, "api_base": UP, "api_key": "sk-up", **params}}


def gateway(model_list: list[dict[str, Any]], pool: Pool | None = None, **router: Any) -> tuple[Gateway, Pool]:
    raw = {"model_list": model_list, "router_settings": router, "general_settings": NO_STORES}
    pool = pool or Pool()
    return build_gateway(parse_config(raw), pool, None), pool


def request(model: str, **extra: Any) -> tuple[dict[str, Any], RequestContext]:
    raw = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
    return raw, RequestContext("r", ADMIN, Steering.of(ChatCompletionRequest.model_validate(raw)))


async def test_a_wildcard_serves_any_name_under_its_prefix() -> None:
    gw, pool = gateway([entry("openai/*", "openai/*"), entry("*", "anthropic/*")])
    plan, _ = await gw.complete("chat", *request("openai/gpt-4.1-mini"))
    assert plan.model == "openai/gpt-4.1-mini" and pool.calls[-1].model == "openai/gpt-4.1-mini"
    assert pool.calls[-1].deployment == 0
    plan, _ = await gw.complete("chat", *request("claude-haiku-4-5"))  # the catch-all
    assert pool.calls[-1].model == "anthropic/claude-haiku-4-5" and pool.calls[-1].deployment == 1
    assert gw.prices(plan.deployment).input > 0  # priced from litellm's map, as the concrete model
    assert gw.catalog.public_names() == ["openai/*", "*"]


async def test_without_a_catch_all_other_names_are_404() -> None:
    gw, _ = gateway([entry("openai/*", "openai/*")])
    with pytest.raises(NotFoundError):
        await gw.complete("chat", *request("mistral/large"))
    with pytest.raises(NotFoundError):
        await gw.complete("chat", *request("openai/"))  # `*` stands for at least one character


async def test_a_concrete_name_wins_over_a_wildcard() -> None:
    gw, pool = gateway([entry("openai/*", "openai/*"), entry("openai/gpt-4o", "openai/gpt-4o-2024-08-06")])
    await gw.complete("chat", *request("openai/gpt-4o"))
    assert pool.calls[-1].deployment == 1 and pool.calls[-1].model is None


async def test_model_group_alias_reaches_the_group_and_hidden_ones_are_not_listed() -> None:
    gw, pool = gateway([entry("gpt-4o", "openai/gpt-4o")],
                       model_group_alias={"gpt-4": "gpt-4o", "old": {"model": "gpt-4o", "hidden": True}})
    for name in ("gpt-4", "old"):
        plan, _ = await gw.complete("chat", *request(name))
        assert plan.model == "gpt-4o" and pool.calls[-1].deployment == 0
    assert gw.catalog.public_names() == ["gpt-4o", "gpt-4"]


async def test_a_deployment_at_its_rpm_is_skipped_then_429() -> None:
    gw, pool = gateway([entry("m", "openai/a", rpm=1), entry("m", "openai/b", rpm=2)])
    for _ in range(3):
        await gw.complete("chat", *request("m"))
    assert Counter(c.deployment for c in pool.calls) == {0: 1, 1: 2}
    with pytest.raises(RateLimitError) as err:
        await gw.complete("chat", *request("m"))
    assert err.value.code == "deployment_rate_limited" and len(pool.calls) == 3
    assert err.value.retry_after is not None and 1 <= err.value.retry_after <= 60


async def test_a_deployment_at_its_tpm_is_skipped() -> None:
    gw, pool = gateway([entry("m", "openai/a", tpm=50), entry("m", "openai/b")],
                       routing_strategy="least-busy")
    for _ in range(4):
        await gw.complete("chat", *request("m", max_tokens=20))
    assert Counter(c.deployment for c in pool.calls)[0] <= 2  # ~21+ tokens reserved per request


async def test_usage_based_routing_spreads_by_tokens_used() -> None:
    gw, pool = gateway([entry("m", "openai/a"), entry("m", "openai/b")], routing_strategy="usage-based-routing-v2")
    for _ in range(6):
        await gw.complete("chat", *request("m", max_tokens=100))
    assert Counter(c.deployment for c in pool.calls) == {0: 3, 1: 3}  # the least used takes the next


@pytest.mark.parametrize(("code", "kind"), [("context_length_exceeded", "context_window_fallbacks"),
                                            ("content_policy_violation", "content_policy_fallbacks")])
async def test_special_fallbacks_answer_their_error(code: str, kind: str) -> None:
    models = [entry("small", "openai/small"), entry("big", "openai/big")]
    gw, _ = gateway(models, Pool(refuse={0: code}), **{kind: [{"small": ["big"]}]})
    plan, _ = await gw.complete("chat", *request("small"))
    assert plan.model == "big" and plan.fallback_from == "small"
    other = "content_policy_violation" if code == "context_length_exceeded" else "context_length_exceeded"
    gw, _ = gateway(models, Pool(refuse={0: other}), **{kind: [{"small": ["big"]}]})
    with pytest.raises(InvalidRequestError):  # another 400 is the client's answer, not a fallback
        await gw.complete("chat", *request("small"))


def test_router_candidates_take_prices_windows_and_capabilities_from_the_cost_map() -> None:
    raw = {"model_list": [entry("gpt-4o", "openai/gpt-4o")],
           "router_settings": {"routers": [{"name": "auto", "strategy": "cost-first"}]},
           "general_settings": NO_STORES}
    gw = build_gateway(parse_config(raw), Pool(), None)
    cand = gw.catalog.candidate("gpt-4o")
    prices = gw.prices(gw.catalog.model("gpt-4o")[0])
    assert cand.price == pytest.approx((prices.input + prices.output) / 2 * 1e6) and cand.price > 0
    assert cand.context_window >= 128_000 and {"tools", "vision", "json"} <= cand.capabilities
    assert gw.catalog.routers["auto"].candidates == (cand,)


def test_declared_capabilities_win_over_the_map() -> None:
    raw = {"model_list": [{**entry("gpt-4o", "openai/gpt-4o"), "model_info": {"capabilities": []}}],
           "general_settings": NO_STORES}
    gw = build_gateway(parse_config(raw), Pool(), None)
    assert gw.catalog.candidate("gpt-4o").capabilities == frozenset()


def test_a_single_model_is_found_for_every_name_a_request_may_use() -> None:
    from app.routes.models import may_name, visible_models

    gw, _ = gateway([entry("openai/*", "openai/*"), entry("gpt-4o", "openai/gpt-4o")],
                    model_group_alias={"old": {"model": "gpt-4o", "hidden": True}})
    assert visible_models(ADMIN, gw) == ["openai/*", "gpt-4o"]
    assert all(may_name(ADMIN, gw, n) for n in ("openai/gpt-4.1", "old", "gpt-4o", "openai/*"))
    assert not may_name(ADMIN, gw, "mistral/large")
    key = Principal("k", allowed_models=frozenset({"openai/gpt-4.1"}))
    assert may_name(key, gw, "openai/gpt-4.1") and not may_name(key, gw, "openai/gpt-4o-mini")


async def test_a_deployments_hold_is_replaced_by_the_tokens_used() -> None:
    gw, _ = gateway([entry("m", "openai/a", tpm=10_000)])
    raw, ctx = request("m", max_tokens=500)
    plan, _ = await gw.complete("chat", raw, ctx)
    limits = gw.deployment_limits
    assert limits is not None and ctx.deployment_hold is not None
    assert (await limits.tokens_used([plan.deployment]))[0] >= 500  # the hold: prompt + max_tokens
    gw.settle_deployment(ctx, Usage(3, 4, 0.0))
    await gw.close()  # waits for the charge
    assert (await limits.tokens_used([plan.deployment])) == [7] and ctx.deployment_hold is None


async def test_a_failed_call_releases_its_hold() -> None:
    models = [entry("small", "openai/small", tpm=10_000), entry("big", "openai/big", tpm=10_000)]
    gw, _ = gateway(models, Pool(refuse={0: "context_length_exceeded"}), context_window_fallbacks=[{"small": ["big"]}])
    raw, ctx = request("small", max_tokens=500)
    plan, _ = await gw.complete("chat", raw, ctx)
    assert plan.model == "big"
    limits = gw.deployment_limits
    assert limits is not None
    small = gw.catalog.model("small")[0]
    for _ in range(100):  # the release is a background task
        if await limits.tokens_used([small]) == [0]:
            break
        await asyncio.sleep(0.01)
    assert await limits.tokens_used([small]) == [0]
