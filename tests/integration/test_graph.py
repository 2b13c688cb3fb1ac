"""The gateway through the real Serve graph, with the official openai SDK as client."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import openai
import pytest

from devtools.configs import CHEAP, MASTER_KEY, MID, PRICEY


@pytest.fixture(scope="module")
def client(gateway_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway_url, api_key=MASTER_KEY, max_retries=0, timeout=30)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_plain_chat_has_usage_cost_and_headers(client: openai.OpenAI, upstream) -> None:
    raw = client.chat.completions.with_raw_response.create(model=MID, messages=user("hello plain"))
    reply = raw.parse()
    assert reply.choices[0].message.content.startswith("echo: hello plain")
    assert reply.usage.completion_tokens == 16
    assert reply.usage.model_extra["cost"] == pytest.approx(reply.usage.total_tokens * 0.5e-6)
    assert raw.headers["x-routeiq-model"] == MID
    rid = raw.headers["x-request-id"]
    seen = [r for r in upstream.state.requests if r["headers"].get("x-request-id") == rid]
    assert len(seen) == 1 and seen[0]["headers"]["traceparent"].startswith("00-")
    assert seen[0]["body"]["model"] == MID  # provider prefix stripped


def test_streamed_chat_content_and_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MID, messages=user("hello stream"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("echo: hello stream")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 16


def test_stream_without_include_usage_has_no_usage_chunk(gateway_url: str) -> None:
    body = {"model": MID, "messages": user("no usage please"), "stream": True}
    with httpx.stream("POST", f"{gateway_url}/chat/completions", json=body,
                      headers={"authorization": f"Bearer {MASTER_KEY}"}) as resp:
        raw = resp.read().decode()
    assert resp.status_code == 200 and raw.rstrip().endswith("data: [DONE]")
    assert '"usage":{' not in raw


def test_completions_embeddings_and_models(client: openai.OpenAI) -> None:
    done = client.completions.create(model=MID, prompt="complete me")
    assert done.choices[0].text.startswith("echo: complete me")
    emb = client.embeddings.create(model="embed-model", input=["a", "b"])
    assert len(emb.data) == 2 and len(emb.data[0].embedding) == 8
    ids = {m.id for m in client.models.list()}
    assert {CHEAP, MID, PRICEY, "embed-model", "auto"} <= ids


def test_litellm_transport_plain_and_streamed(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="via-litellm", messages=user("through litellm"))
    assert reply.choices[0].message.content.startswith("echo: through litellm")
    assert reply.usage.model_extra["cost"] > 0
    stream = client.chat.completions.create(model="via-litellm", messages=user("lite stream"), stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("echo: lite stream")


def test_unknown_fields_pass_through(client: openai.OpenAI, upstream) -> None:
    marker = uuid.uuid4().hex
    client.chat.completions.create(model=MID, messages=user(marker), extra_body={"top_k": 7})
    body = next(r["body"] for r in upstream.state.requests if marker in str(r["body"]))
    assert body["top_k"] == 7


def test_auto_routes_cheapest_that_fits(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=user("short"))
    assert raw.headers["x-routeiq-model"] == CHEAP
    assert raw.headers["x-routeiq-strategy"] == "cost-first"
    # The cheap model's window is 64 tokens: a long prompt must go elsewhere.
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=user("word " * 400))
    assert raw.headers["x-routeiq-model"] == MID
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=user("x"), tools=[tool])
    assert raw.headers["x-routeiq-model"] == MID


def _error(call) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as info:
        call()
    err = info.value
    assert set(err.body) >= {"message", "type", "param", "code"}  # the SDK unwraps {"error": ...}
    return err


def test_error_statuses(client: openai.OpenAI, gateway_url: str) -> None:
    assert _error(lambda: client.chat.completions.create(model="nope", messages=user("x"))).status_code == 404
    bad = _error(lambda: client.chat.completions.create(model=MID, messages=user("x"), temperature=5))
    assert bad.status_code == 400 and bad.body["param"] == "temperature"
    wrong = openai.OpenAI(base_url=gateway_url, api_key="sk-wrong", max_retries=0)
    assert _error(lambda: wrong.chat.completions.create(model=MID, messages=user("x"))).status_code == 401
    big = _error(lambda: client.chat.completions.create(model=MID, messages=user("x" * 70_000)))
    assert big.status_code == 413
    limited = _error(lambda: client.chat.completions.create(
        model=MID, messages=user("x [[fake error=429 retry_after=7]]")))
    assert limited.status_code == 429 and limited.response.headers["retry-after"] == "7"


def test_readiness_reports_the_whole_graph(gateway_url: str) -> None:
    base = gateway_url.removesuffix("/v1")
    resp = httpx.get(f"{base}/health/readiness")
    assert resp.status_code == 200 and resp.json()["status"] == "ready"
    assert resp.json()["graph"] == {"provider:small": "up", "provider:large": "up", "provider:slow": "up",
                                    "router-scoring": "up"}
    assert httpx.get(f"{base}/health/liveliness").json() == {"status": "ok"}


def test_malformed_json_and_missing_key(gateway_url: str) -> None:
    auth = {"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"}
    resp = httpx.post(f"{gateway_url}/chat/completions", content=b"{not json", headers=auth)
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"
    resp = httpx.post(f"{gateway_url}/chat/completions", json={"model": MID, "messages": user("x")})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_api_key"
    resp = httpx.get(f"{gateway_url}/nowhere", headers=auth)
    assert resp.status_code == 404 and "error" in resp.json()


def test_upstream_failure_retries_then_502(client: openai.OpenAI, upstream) -> None:
    key = uuid.uuid4().hex
    err = _error(lambda: client.chat.completions.create(
        model=MID, messages=user(f"[[fake error=500 key={key} fail_times=99]]")))
    assert err.status_code == 502
    assert upstream.state.seen_keys[key] == 3  # 1 try + num_retries=2
    key = uuid.uuid4().hex
    ok = client.chat.completions.create(model=MID, messages=user(f"[[fake error=500 key={key} fail_times=2]]"))
    assert ok.choices[0].message.content.startswith("echo:")


def test_timeout_is_504_not_a_hang(client: openai.OpenAI) -> None:
    started = time.monotonic()
    err = _error(lambda: client.chat.completions.create(model=MID, messages=user("[[fake error=timeout]]")))
    assert err.status_code == 504
    assert time.monotonic() - started < 25  # the gateway answered, before the client's own 30 s timeout


def test_error_after_first_chunk_ends_stream_with_error_event(gateway_url: str) -> None:
    body = {"model": MID, "messages": user("[[fake error=disconnect_mid tokens=20]]"), "stream": True}
    with httpx.stream("POST", f"{gateway_url}/chat/completions", json=body,
                      headers={"authorization": f"Bearer {MASTER_KEY}"}) as resp:
        raw = resp.read().decode()
    assert resp.status_code == 200
    assert '"error":' in raw and raw.rstrip().endswith("data: [DONE]")


async def test_fifty_concurrent_streams(gateway_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=gateway_url, api_key=MASTER_KEY, max_retries=0, timeout=60)

    async def one(i: int) -> str:
        stream = await client.chat.completions.create(
            model=MID, messages=user(f"stream-{i} [[fake tokens=30 itl_ms=2]]"), stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    texts = await asyncio.gather(*(one(i) for i in range(50)))
    for i, text in enumerate(texts):
        assert text.startswith(f"echo: stream-{i}") and text.endswith(" t29"), text
    await client.close()


def test_client_disconnect_cancels_upstream(gateway_url: str, upstream) -> None:
    before = upstream.state.stats["streams_cancelled"]
    body = {"model": MID, "messages": user("[[fake tokens=200 itl_ms=50]]"), "stream": True}
    with httpx.stream("POST", f"{gateway_url}/chat/completions", json=body,
                      headers={"authorization": f"Bearer {MASTER_KEY}"}) as resp:
        lines = resp.iter_lines()
        assert next(lines).startswith("data: ")
    deadline = time.monotonic() + 60
    while upstream.state.stats["streams_cancelled"] == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert upstream.state.stats["streams_cancelled"] == before + 1
