"""A config applied in place: the gateway's snapshot swap and the provider side that follows it."""

from __future__ import annotations

import copy

from app.config import parse_config
from app.providers.base import ProviderCall, Upstream
from app.providers.caller import ProviderCaller
from app.providers.mock import MockReply, MockTransport
from app.wiring import build_gateway
from devtools.configs import CHEAP, MID, gateway_config
from tests.unit.app.gateway.test_core import ADMIN, NO_STORES, RecordingPool, body, request


def raw() -> dict:
    return gateway_config("http://127.0.0.1:1/v1", **NO_STORES)


async def test_new_prices_fallbacks_and_timeouts_serve_the_next_request() -> None:
    pool = RecordingPool()
    gw = build_gateway(parse_config(raw()), pool, None)
    plan, _ = await gw.complete("chat", *request(body(CHEAP), ADMIN))
    assert gw.prices(plan.deployment).input == 0.1 / 1e6 and pool.calls[-1][1].entry is None
    changed = raw()
    changed["model_list"][0]["model_info"]["input_cost_per_token"] = 0.9e-6
    changed["model_list"].append(dict(copy.deepcopy(changed["model_list"][1]), model_name="mid-copy"))
    changed["router_settings"]["fallbacks"] = [{CHEAP: ["mid-copy"]}]
    changed["general_settings"]["request_timeout_s"] = 7
    gw.reconfigure(parse_config(changed))
    plan, _ = await gw.complete("chat", *request(body(CHEAP), ADMIN))
    assert gw.prices(plan.deployment).input == 0.9e-6
    call = pool.calls[-1][1]
    assert call.timeout_s == 7 and call.entry is not None and call.entry.model_info.input_cost_per_token == 0.9e-6
    assert [g[0].entry.model_name for g in await gw._chain(plan, *request(body(CHEAP), ADMIN))] == [CHEAP, "mid-copy"]
    plan, _ = await gw.complete("chat", *request(body("mid-copy"), ADMIN))  # a model added in place serves
    assert plan.deployment.entry.model_name == "mid-copy" and pool.calls[-1][0] == "small"


async def test_the_provider_prices_and_calls_the_entry_a_call_carries() -> None:
    cfg = parse_config(raw())
    seen: list[Upstream] = []
    transport = MockTransport(lambda upstream, call: seen.append(upstream) or MockReply())
    caller = ProviderCaller(cfg.provider_settings("small"), transport)
    changed = raw()
    changed["model_list"][1]["model_info"]["output_cost_per_token"] = 2e-6
    live = parse_config(changed).model_list[1]
    msg = {"model": MID, "messages": [{"role": "user", "content": "hi"}]}
    await caller.complete(ProviderCall("chat", 1, msg, request_id="a"))
    await caller.complete(ProviderCall("chat", 1, msg, request_id="b", entry=live))
    assert seen[0].prices.output == 0.5e-6 and seen[1].prices.output == 2e-6
    added = live.model_copy(update={"model_name": "new-model"})  # an index the replica was not bound with
    await caller.complete(ProviderCall("chat", 99, msg, request_id="c", entry=added))
    assert seen[2].entry.model_name == "new-model"
