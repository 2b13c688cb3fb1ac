"""OpenAI's Responses API through the real Serve graph, driven by the official ``openai`` SDK.

One embedded (SQLite) gateway app with virtual keys and the decision log; both models
can use tools, so ``auto`` (cost-first: the cheap model) serves those requests too. The
fake upstream answers in chat's format (``[[fake tool_call=NAME]]`` makes it call a
tool); every answer must come back as a ``response`` object or the Responses stream's
typed events, and every request must be routed, charged and logged exactly as a chat
request is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import orjson
import pytest

from devtools.configs import CHEAP, MASTER_KEY, MID
from devtools.fake_upstream.server import reply_tokens, tool_arguments
from tests.integration.gateway_app import PRICE, App, deploy_app

NAME = "responses"
WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"echo": {"type": "string"}}}}


NATIVE, NATIVE_PRICE = "gpt-native", 2e-6
"""A model whose upstream has the Responses API (``supported_endpoints``): passed through natively."""


@pytest.fixture(scope="module")
def app(deploy_gateway: Callable[..., str], upstream: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    from ray import serve

    native = {"model_name": NATIVE, "provider_group": NAME,
              "litellm_params": {"model": f"openai/{NATIVE}", "api_base": upstream.url, "api_key": "sk-up"},
              "model_info": {"input_cost_per_token": NATIVE_PRICE, "output_cost_per_token": NATIVE_PRICE,
                             "supported_endpoints": ["/v1/chat/completions", "/v1/responses"]}}
    yield deploy_app(deploy_gateway, upstream.url, str(tmp_path_factory.mktemp(NAME)), NAME, ["tools"], [native])
    serve.delete(NAME)


@pytest.fixture(scope="module")
def client(app: App) -> openai.OpenAI:
    """The official SDK, unchanged, with a RouteIQ virtual key."""
    return openai.OpenAI(base_url=f"{app.base}/v1", api_key=app.new_key(), max_retries=0, timeout=30)


def _expected(text: str) -> str:
    return "".join(reply_tokens({"messages": [{"role": "user", "content": text}]}, 16))


def _upstream_body(upstream: Any, rid: str) -> dict[str, Any]:
    return next(r["body"] for r in upstream.state.requests if r["headers"].get("x-request-id") == rid)


def test_a_plain_response_through_a_concrete_model_is_answered_and_charged(app: App, client: openai.OpenAI,
                                                                         upstream: Any) -> None:
    text = "plain responses request"
    raw = client.responses.with_raw_response.create(model=MID, instructions="be brief", input=text,
                                                    max_output_tokens=64, metadata={"run": "1"})
    response, rid = raw.parse(), raw.headers["x-request-id"]
    assert raw.headers["x-routeiq-model"] == MID and response.model == MID and response.id == f"resp_{rid}"
    assert response.status == "completed" and response.output_text == _expected(text)
    assert response.metadata == {"run": "1"} and response.instructions == "be brief"
    prompt = len(f"be brief\n{text}".split())  # the fake upstream counts the prompt's words
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (
        prompt, 16, prompt + 16)
    sent = _upstream_body(upstream, rid)
    assert sent["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]
    assert sent["max_tokens"] == 64 and "metadata" not in sent
    row = app.spend_row(rid)
    assert (row["model"], row["prompt_tokens"], row["completion_tokens"]) == (MID, prompt, 16)
    assert row["cost"] == pytest.approx((prompt + 16) * PRICE[MID]) and row["usage_estimated"] is False


def test_a_stream_through_auto_has_the_typed_events_and_final_usage(app: App, client: openai.OpenAI) -> None:
    text = "stream me through auto"
    with client.responses.stream(model="auto", input=[{"role": "user", "content": text}]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
        rid = stream._response.headers["x-request-id"]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert "response.output_text.delta" in kinds
    assert final.output_text == _expected(text) and final.model == CHEAP  # cost-first picked the cheap model
    assert final.usage is not None and (final.usage.input_tokens, final.usage.output_tokens) == (len(text.split()), 16)
    row = app.spend_row(rid)
    assert (row["model"], row["prompt_tokens"], row["completion_tokens"]) == (CHEAP, len(text.split()), 16)
    assert row["usage_estimated"] is False
    decision = app.decision_row(rid)
    assert (decision["router"], decision["chosen"], decision["completion_tokens"]) == ("auto", CHEAP, 16)


@pytest.mark.parametrize("model", [MID, "auto"])
def test_a_tool_call_round_trips(app: App, client: openai.OpenAI, upstream: Any, model: str) -> None:
    question = f"weather in Paris via {model}? [[fake tool_call=get_weather]]"
    raw = client.responses.with_raw_response.create(model=model, input=question, tools=[WEATHER])  # type: ignore[list-item]
    first = raw.parse()
    assert [item.type for item in first.output] == ["message", "function_call"]
    call = first.output[1]
    assert call.type == "function_call" and call.name == "get_weather"
    assert orjson.loads(call.arguments) == orjson.loads(tool_arguments({"messages": [
        {"role": "user", "content": question}]}))
    sent = _upstream_body(upstream, raw.headers["x-request-id"])
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city", "parameters": WEATHER["parameters"]}}]
    answer = client.responses.with_raw_response.create(model=model, tools=[WEATHER], input=[  # type: ignore[list-item]
        {"role": "user", "content": question}, *[item.model_dump(exclude_none=True) for item in first.output],  # type: ignore[misc]
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"}])
    second = answer.parse()
    assert [item.type for item in second.output] == ["message"] and second.output_text
    sent = _upstream_body(upstream, answer.headers["x-request-id"])
    assert sent["messages"][-2]["role"] == "assistant" and sent["messages"][-2]["tool_calls"][0]["id"] == call.call_id
    assert sent["messages"][-1] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny, 21 C"}
    assert app.spend_row(answer.headers["x-request-id"])["model"] == (CHEAP if model == "auto" else model)


def test_a_streamed_tool_call_arrives_as_argument_deltas(client: openai.OpenAI) -> None:
    question = "streamed weather in Rome? [[fake tool_call=get_weather]]"
    with client.responses.stream(model="auto", input=question, tools=[WEATHER]) as stream:  # type: ignore[list-item]
        events = list(stream)
        final = stream.get_final_response()
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    arguments = orjson.loads(tool_arguments({"messages": [{"role": "user", "content": question}]}))
    assert len(deltas) >= 2 and orjson.loads("".join(deltas)) == arguments
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert len(done) == 1 and orjson.loads(done[0].arguments) == arguments
    calls = [item for item in final.output if item.type == "function_call"]
    assert len(calls) == 1 and orjson.loads(calls[0].arguments) == arguments
    assert final.usage is not None and final.usage.output_tokens == 16


def test_errors_are_openai_shaped(app: App, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="x")
    stranger = openai.OpenAI(base_url=f"{app.base}/v1", api_key="sk-not-a-key", max_retries=0, timeout=30)
    with pytest.raises(openai.AuthenticationError):
        stranger.responses.create(model=MID, input="x")
    with pytest.raises(openai.BadRequestError) as stateful:
        client.responses.create(model=MID, input="x", previous_response_id="resp_123")
    assert stateful.value.param == "previous_response_id"
    for path in ("/v1/responses", "/responses"):
        resp = app.http.post(path, json={"model": MID, "input": "x", "tools": [{"type": "file_search"}]},
                             headers={"authorization": f"Bearer {MASTER_KEY}"})
        assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"
        assert "file_search" in resp.json()["error"]["message"]


def test_an_upstream_failure_falls_back_as_for_chat(app: App, client: openai.OpenAI) -> None:
    """Last in the module: the failing model may cool down afterwards."""
    text = f"fall back please [[fake error=500 only={CHEAP}]]"
    raw = client.responses.with_raw_response.create(model="auto", input=text)
    assert raw.parse().model == MID and raw.headers["x-routeiq-model"] == MID
    decision = app.decision_row(raw.headers["x-request-id"])
    assert (decision["router"], decision["routed_to"], decision["chosen"]) == ("auto", CHEAP, MID)


def test_a_model_whose_upstream_has_the_responses_api_gets_the_request_as_sent(app: App, client: openai.OpenAI,
                                                                              upstream: Any) -> None:
    text = "native responses request"
    raw = client.responses.with_raw_response.create(model=NATIVE, instructions="be brief", input=text,
                                                    max_output_tokens=64, metadata={"run": "n"})
    response, rid = raw.parse(), raw.headers["x-request-id"]
    sent = next(r for r in upstream.state.requests if r["headers"].get("x-request-id") == rid)
    assert sent["path"] == "/v1/responses"  # the upstream's own API, not the chat translation
    assert sent["body"] == {"model": NATIVE, "instructions": "be brief", "input": text, "max_output_tokens": 64,
                            "metadata": {"run": "n"}}
    assert response.id.startswith("resp_fake_")  # the upstream's own answer, passed back
    assert response.output_text == _expected(text) and raw.headers["x-routeiq-model"] == NATIVE
    prompt = len(f"be brief {text}".split())
    assert response.usage is not None and (response.usage.input_tokens, response.usage.output_tokens) == (prompt, 16)
    row = app.spend_row(rid)
    assert (row["model"], row["prompt_tokens"], row["completion_tokens"]) == (NATIVE, prompt, 16)
    assert row["cost"] == pytest.approx((prompt + 16) * NATIVE_PRICE) and row["usage_estimated"] is False


def test_a_native_stream_is_the_upstreams_events_and_is_charged(app: App, client: openai.OpenAI) -> None:
    text = "native streamed responses request"
    raw = client.responses.with_raw_response.create(model=NATIVE, input=text, stream=True)
    rid = raw.headers["x-request-id"]
    events = list(raw.parse())
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == _expected(text) and events[-1].response.id.startswith("resp_fake_")
    row = app.spend_row(rid)
    assert (row["model"], row["completion_tokens"], row["usage_estimated"]) == (NATIVE, 16, False)
