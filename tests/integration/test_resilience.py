"""Fallbacks, cooldowns shared across ingress replicas, and load shedding, with real faults."""

from __future__ import annotations

import asyncio
import copy
import time
import uuid

import openai
import pytest

from devtools.configs import MASTER_KEY, MID, PRICEY, gateway_config


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def resilient_url(deploy_gateway, upstream, redis_server) -> str:
    access = {"enabled": False, "redis_prefix": f"test-{uuid.uuid4().hex[:8]}"}
    cfg = copy.deepcopy(gateway_config(upstream.url, redis_url=redis_server.url(), access=access))
    cfg["router_settings"].update(fallbacks=[{MID: [PRICEY]}], allowed_fails=2, cooldown_time_s=60,
                                  num_retries=0, cooldown_min_keys=1)  # one key (the master key) here
    return deploy_gateway(cfg, name="resilient", route_prefix="/resilient",
                          overrides={"Ingress": {"num_replicas": 2}})


def test_fallback_on_5xx_and_on_429_before_the_first_chunk(resilient_url: str) -> None:
    client = openai.OpenAI(base_url=resilient_url, api_key=MASTER_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=MID, messages=user(f"fb {uuid.uuid4().hex} [[fake error=500 only={MID}]]"))
    assert raw.headers["x-routeiq-model"] == PRICEY and raw.headers["x-routeiq-fallback-from"] == MID
    assert raw.parse().choices[0].message.content.startswith("echo: fb")
    stream = client.chat.completions.create(
        model=MID, messages=user(f"sfb [[fake error=429 only={MID}]]"), stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("echo: sfb")


async def test_cooldown_is_shared_across_two_ingress_replicas(resilient_url: str, upstream) -> None:
    client = openai.AsyncOpenAI(base_url=resilient_url, api_key=MASTER_KEY, max_retries=0)
    marker = uuid.uuid4().hex
    # Enough failing requests that both replicas see some; allowed_fails=2 opens the cooldown.
    for _ in range(6):
        await client.chat.completions.create(model=MID, messages=user(f"{marker} [[fake error=500 only={MID}]]"))
    # Every replica re-reads the shared state every 0.5 s, idle or not: ask until 8 requests in
    # a row (both replicas, but with probability 2**-7) avoid MID. A loaded machine may be slow.
    deadline = time.monotonic() + 60
    while True:
        before = upstream.state.stats[f"model:{MID}"]
        replies = [await client.chat.completions.with_raw_response.create(model=MID, messages=user("after"))
                   for _ in range(8)]
        if {r.headers["x-routeiq-model"] for r in replies} == {PRICEY} or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert {r.headers["x-routeiq-model"] for r in replies} == {PRICEY}
    assert upstream.state.stats[f"model:{MID}"] == before  # no replica tried the cooled-down model
    await client.close()


async def test_overload_sheds_with_503_and_admitted_requests_complete(deploy_gateway, upstream) -> None:
    cfg = copy.deepcopy(gateway_config(upstream.url))
    cfg["general_settings"].update(max_inflight_requests=4, request_timeout_s=10)  # the admitted ones take 3 s
    url = deploy_gateway(cfg, name="shed", route_prefix="/shed")
    client = openai.AsyncOpenAI(base_url=url, api_key=MASTER_KEY, max_retries=0, timeout=30)
    order: list[str] = []

    async def one(i: int) -> int:
        try:
            # 3 s: the 16 sheds must all answer before the first admitted one, even on a loaded machine
            await client.chat.completions.create(model=MID, messages=user(f"slow {i} [[fake latency_ms=3000]]"))
            order.append("ok")
            return 200
        except openai.APIStatusError as err:
            assert err.response.headers.get("retry-after") == "1"
            assert err.body["type"] == "service_unavailable"
            order.append("503")
            return err.status_code

    statuses = await asyncio.gather(*(one(i) for i in range(20)))
    assert sorted(statuses) == [200] * 4 + [503] * 16
    assert order[:16] == ["503"] * 16  # shed at once, before any admitted request finished
    await client.close()
