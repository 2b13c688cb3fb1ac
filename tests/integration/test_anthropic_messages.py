"""Anthropic's Messages API through the real Serve graph, driven by the official ``anthropic`` SDK.

One embedded (SQLite) gateway app with virtual keys and the decision log; both models
can use tools and see images, so ``auto`` (cost-first: the cheap model) serves those
requests too. The fake upstream answers in OpenAI's format (``[[fake tool_call=NAME]]``
makes it call a tool); every answer must come back in Anthropic's shapes, and every
request must be routed, charged and logged exactly as a chat request is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import orjson
import pytest

from devtools.configs import CHEAP, MASTER_KEY, MID
from devtools.fake_upstream.server import reply_tokens, tool_arguments
from tests.integration.gateway_app import PRICE, App, deploy_app

NAME = "anthropic"
WEATHER = {"name": "get_weather", "description": "The weather in a city",
           "input_schema": {"type": "object", "properties": {"echo": {"type": "string"}}}}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def app(deploy_gateway: Callable[..., str], upstream: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    from ray import serve

    yield deploy_app(deploy_gateway, upstream.url, str(tmp_path_factory.mktemp(NAME)), NAME, ["tools", "vision"])
    serve.delete(NAME)


@pytest.fixture(scope="module")
def client(app: App) -> anthropic.Anthropic:
    """The official SDK, unchanged: base URL without /v1, a RouteIQ virtual key (sent as x-api-key)."""
    return anthropic.Anthropic(base_url=app.base, api_key=app.new_key(), max_retries=0, timeout=30)


def _expected(text: str) -> str:
    return "".join(reply_tokens({"messages": [{"role": "user", "content": text}]}, 16))


def _upstream_body(upstream: Any, rid: str) -> dict[str, Any]:
    return next(r["body"] for r in upstream.state.requests if r["headers"].get("x-request-id") == rid)


def test_a_plain_message_through_a_concrete_model_is_answered_and_charged(app: App, client: anthropic.Anthropic,
                                                                        upstream: Any) -> None:
    text = "plain anthropic message"
    raw = client.messages.with_raw_response.create(model=MID, max_tokens=64, system="be brief",
                                                   messages=[{"role": "user", "content": text}])
    message, rid = raw.parse(), raw.headers["x-request-id"]
    assert raw.headers["x-routeiq-model"] == MID and message.model == MID and message.id == f"msg_{rid}"
    assert [b.type for b in message.content] == ["text"] and message.content[0].text == _expected(text)  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and message.role == "assistant"
    prompt = len(f"be brief\n{text}".split())  # the fake upstream counts the prompt's words
    assert (message.usage.input_tokens, message.usage.output_tokens) == (prompt, 16)
    sent = _upstream_body(upstream, rid)
    assert sent["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]
    assert sent["max_tokens"] == 64
    row = app.spend_row(rid)
    assert (row["model"], row["prompt_tokens"], row["completion_tokens"]) == (MID, prompt, 16)
    assert row["cost"] == pytest.approx((prompt + 16) * PRICE[MID]) and row["usage_estimated"] is False


def test_a_stream_through_auto_has_anthropics_events_and_final_usage(app: App, client: anthropic.Anthropic) -> None:
    text = "stream me through auto"
    with client.messages.stream(model="auto", max_tokens=64, messages=[{"role": "user", "content": text}]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
        rid = stream.response.headers["x-request-id"]
    for kind in ("message_start", "content_block_start", "content_block_delta", "content_block_stop",
                 "message_delta", "message_stop"):
        assert kind in kinds, kinds
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert final.content[0].text == _expected(text)  # type: ignore[union-attr]
    assert final.model == CHEAP and final.stop_reason == "end_turn"  # cost-first picked the cheap model
    assert (final.usage.input_tokens, final.usage.output_tokens) == (len(text.split()), 16)
    row = app.spend_row(rid)
    assert (row["model"], row["prompt_tokens"], row["completion_tokens"]) == (CHEAP, len(text.split()), 16)
    assert row["usage_estimated"] is False
    decision = app.decision_row(rid)
    assert (decision["router"], decision["chosen"], decision["completion_tokens"]) == ("auto", CHEAP, 16)


def test_the_raw_stream_is_server_sent_events_with_event_names_and_a_ping(app: App) -> None:
    body = {"model": MID, "max_tokens": 32, "stream": True, "messages": [{"role": "user", "content": "raw sse"}]}
    with app.http.stream("POST", "/v1/messages", json=body, headers={"x-api-key": MASTER_KEY}) as resp:
        raw = resp.read()
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    names = [e.split(b"\n")[0] for e in raw.split(b"\n\n") if e]
    assert names[:3] == [b"event: message_start", b"event: ping", b"event: content_block_start"]
    assert names[-2:] == [b"event: message_delta", b"event: message_stop"] and b"[DONE]" not in raw


@pytest.mark.parametrize("model", [MID, "auto"])
def test_tools_round_trip_plain(app: App, client: anthropic.Anthropic, upstream: Any, model: str) -> None:
    question = {"role": "user", "content": f"weather in Paris via {model}? [[fake tool_call=get_weather]]"}
    raw = client.messages.with_raw_response.create(model=model, max_tokens=64, tools=[WEATHER],  # type: ignore[list-item]
                                                   messages=[question])  # type: ignore[list-item]
    first = raw.parse()
    assert first.stop_reason == "tool_use" and [b.type for b in first.content] == ["text", "tool_use"]
    call = first.content[1]
    assert call.type == "tool_use" and call.name == "get_weather"
    assert call.input == orjson.loads(tool_arguments({"messages": [question]}))
    sent = _upstream_body(upstream, raw.headers["x-request-id"])
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city", "parameters": WEATHER["input_schema"]}}]
    answer = client.messages.with_raw_response.create(model=model, max_tokens=64, tools=[WEATHER], messages=[  # type: ignore[list-item]
        question, {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21 C"}]}])
    second = answer.parse()
    assert second.stop_reason == "end_turn" and [b.type for b in second.content] == ["text"]
    sent = _upstream_body(upstream, answer.headers["x-request-id"])
    assert sent["messages"][-2]["tool_calls"][0]["id"] == call.id
    assert sent["messages"][-1] == {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}
    assert app.spend_row(answer.headers["x-request-id"])["model"] == (CHEAP if model == "auto" else model)


def test_tools_streamed_arrive_as_input_json_deltas(client: anthropic.Anthropic) -> None:
    question = {"role": "user", "content": "streamed weather in Rome? [[fake tool_call=get_weather]]"}
    with client.messages.stream(model="auto", max_tokens=64, tools=[WEATHER],  # type: ignore[list-item]
                                messages=[question]) as stream:  # type: ignore[list-item]
        events = list(stream)
        final = stream.get_final_message()
    partial = [e.delta.partial_json for e in events if e.type == "content_block_delta"  # type: ignore[union-attr]
               and e.delta.type == "input_json_delta"]  # type: ignore[union-attr]
    arguments = orjson.loads(tool_arguments({"messages": [question]}))
    assert len(partial) >= 2 and orjson.loads("".join(partial)) == arguments
    assert final.stop_reason == "tool_use" and [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].input == arguments  # type: ignore[union-attr]
    assert final.usage.output_tokens == 16


def test_an_image_reaches_the_upstream_as_an_image_url_part(client: anthropic.Anthropic, upstream: Any) -> None:
    raw = client.messages.with_raw_response.create(model="auto", max_tokens=32, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "what is in this image?"}]}])
    assert raw.parse().content[0].type == "text"
    sent = _upstream_body(upstream, raw.headers["x-request-id"])
    assert sent["messages"] == [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "text", "text": "what is in this image?"}]}]


def test_count_tokens_is_the_gateways_estimate(client: anthropic.Anthropic) -> None:
    text = "count these characters please"
    counted = client.messages.count_tokens(model=MID, system="sys", messages=[{"role": "user", "content": text}])
    assert counted.input_tokens == (len("sys") + len(text)) // 4
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="no-such-model", messages=[{"role": "user", "content": text}])


def test_errors_are_anthropic_shaped(app: App, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="no-such-model", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    stranger = anthropic.Anthropic(base_url=app.base, api_key="sk-not-a-key", max_retries=0, timeout=30)
    with pytest.raises(anthropic.AuthenticationError):
        stranger.messages.create(model=MID, max_tokens=8, messages=[{"role": "user", "content": "x"}])
    for path in ("/v1/messages", "/messages"):
        resp = app.http.post(path, json={"model": MID, "messages": [{"role": "user", "content": "x"}]},
                             headers={"x-api-key": MASTER_KEY})
        error = resp.json()
        assert resp.status_code == 400 and error["type"] == "error"
        assert error["error"]["type"] == "invalid_request_error" and "max_tokens" in error["error"]["message"]
    garbage = app.http.post("/v1/messages", content=b"{nope", headers={"x-api-key": MASTER_KEY})
    assert garbage.status_code == 400 and garbage.json()["error"]["type"] == "invalid_request_error"


def test_an_upstream_failure_falls_back_as_for_chat(app: App, client: anthropic.Anthropic) -> None:
    """Last in the module: the failing model may cool down afterwards."""
    text = f"fall back please [[fake error=500 only={CHEAP}]]"
    raw = client.messages.with_raw_response.create(model="auto", max_tokens=32,
                                                   messages=[{"role": "user", "content": text}])
    assert raw.parse().model == MID and raw.headers["x-routeiq-model"] == MID
    decision = app.decision_row(raw.headers["x-request-id"])
    assert (decision["router"], decision["routed_to"], decision["chosen"]) == ("auto", CHEAP, MID)
