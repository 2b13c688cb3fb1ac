"""Anthropic Messages requests into OpenAI chat bodies (``app.anthropic.request``), no Ray."""

from __future__ import annotations

from typing import Any

import pytest

from app.anthropic.request import to_chat
from app.errors import InvalidRequestError
from app.http import validate
from app.schemas.anthropic import CountTokensRequest, MessagesRequest
from app.schemas.openai import ChatCompletionRequest, Steering

PNG = "iVBORw0KGgo="


def chat(**body: Any) -> dict[str, Any]:
    request = {"model": "auto", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}], **body}
    out = to_chat(validate(MessagesRequest, request))
    validate(ChatCompletionRequest, out)  # what the route checks next: every translation is a valid chat body
    return out


def test_a_plain_request_maps_its_sampling_fields() -> None:
    out = chat(system="be brief", stop_sequences=["END"], temperature=0.5, top_p=0.9, top_k=5,
               metadata={"user_id": "u-1"}, routeiq={"lambda": 2.0})
    assert out == {"model": "auto", "max_tokens": 64, "stop": ["END"], "temperature": 0.5, "top_p": 0.9,
                   "user": "u-1", "routeiq": {"lambda": 2.0},
                   "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}


def test_a_stream_always_asks_for_the_usage_chunk_and_steers_as_one() -> None:
    out = chat(stream=True)
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    steering = Steering.of(validate(ChatCompletionRequest, out))
    assert (steering.stream, steering.include_usage, steering.max_tokens) == (True, True, 64)


def test_system_blocks_are_joined_and_an_empty_system_is_left_out() -> None:
    out = chat(system=[{"type": "text", "text": "one", "cache_control": {"type": "ephemeral"}},
                       {"type": "text", "text": "two"}])
    assert out["messages"][0] == {"role": "system", "content": "one\ntwo"}
    assert chat(system="")["messages"] == [{"role": "user", "content": "hi"}]


def test_text_blocks_become_one_string_and_images_image_url_parts() -> None:
    text = chat(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])
    assert text["messages"] == [{"role": "user", "content": "a\nb"}]
    image = chat(messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]}])
    assert image["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}]


def test_a_tool_round_trip_becomes_tool_calls_and_tool_messages() -> None:
    out = chat(
        tools=[{"name": "weather", "description": "the weather", "input_schema": {"type": "object"}},
               {"type": "custom", "name": "clock", "input_schema": {"type": "object"}}],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        messages=[
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "two calls", "signature": "x"},
                {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
                 "content": [{"type": "text", "text": "no data"},
                             {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": PNG}}]},
                {"type": "text", "text": "and so?"}]},
        ])
    assert out["tools"] == [
        {"type": "function", "function": {"name": "weather", "description": "the weather",
                                          "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "clock", "parameters": {"type": "object"}}}]
    assert (out["tool_choice"], out["parallel_tool_calls"]) == ("required", False)
    assert out["messages"] == [  # no system: nothing before the first turn
        {"role": "user", "content": "weather in Paris and Rome?"},
        {"role": "assistant", "content": "Looking.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
            {"id": "toolu_2", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Rome"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: no data"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": f"data:image/gif;base64,{PNG}"}}]},
        {"role": "user", "content": "and so?"}]


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, {"tool_choice": "auto"}),
    ({"type": "none"}, {"tool_choice": "none"}),
    ({"type": "tool", "name": "clock"}, {"tool_choice": {"type": "function", "function": {"name": "clock"}}}),
])
def test_tool_choices(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    out = chat(tools=[{"name": "clock", "input_schema": {"type": "object"}}], tool_choice=choice)
    assert {k: out[k] for k in expected} == expected and "parallel_tool_calls" not in out


def test_tool_choice_none_without_tools_is_left_out() -> None:
    assert "tool_choice" not in chat(tool_choice={"type": "none"})


def test_an_assistant_turn_with_only_tool_use_has_no_content() -> None:
    out = chat(tools=[{"name": "clock", "input_schema": {}}], messages=[
        {"role": "user", "content": "time?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "clock", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]}])
    assert out["messages"][1]["content"] is None and out["messages"][2] == {
        "role": "tool", "tool_call_id": "t", "content": ""}


def test_count_tokens_requests_translate_without_sampling_fields() -> None:
    out = to_chat(validate(CountTokensRequest, {"model": "m", "system": "s", "messages": [
        {"role": "user", "content": "hello"}]}))
    assert out == {"model": "m", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hello"}]}


BAD: list[tuple[dict[str, Any], str]] = [
    ({"max_tokens": None}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": "5"}, "max_tokens"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": [{"type": "video", "source": {}}]}]}, "messages.0.content"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/tiff", "data": PNG}}]}]}, "messages.0.content"),
    ({"temperature": 1.5}, "temperature"),
    ({"temperature": float("nan")}, "temperature"),
    ({"stream": "true"}, "stream"),
    ({"tools": [{"type": "web_search", "name": "web_search"}]}, "tools.0.server.type"),
    ({"tools": [{"name": "x"}]}, "tools.0.custom.input_schema"),
    ({"tool_choice": {"type": "any"}}, "tool_choice"),
    ({"tool_choice": {"type": "tool"}, "tools": [{"name": "x", "input_schema": {}}]}, "tool_choice.name"),
    ({"messages": [{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]}, "messages"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "x", "input": {}}]}]},
     "messages"),
    ({"system": [{"type": "image", "source": {}}]}, "system"),
]


@pytest.mark.parametrize(("change", "param"), BAD)
def test_bad_input_is_a_400_naming_the_field(change: dict[str, Any], param: str) -> None:
    request = {"model": "auto", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}], **change}
    request = {k: v for k, v in request.items() if v is not None}
    with pytest.raises(InvalidRequestError) as refused:
        to_chat(validate(MessagesRequest, request))
    assert refused.value.status == 400 and (refused.value.param or "").startswith(param), refused.value.message


def test_fields_without_an_openai_equivalent_are_accepted_and_not_forwarded() -> None:
    out = chat(thinking={"type": "enabled", "budget_tokens": 1024}, service_tier="auto",
               tools=[{"name": "clock", "input_schema": {}, "cache_control": {"type": "ephemeral"}}])
    assert set(out) == {"model", "messages", "max_tokens", "tools"}
    assert out["tools"] == [{"type": "function", "function": {"name": "clock", "parameters": {}}}]
