"""Responses requests into OpenAI chat bodies (``app.responses.request``), no Ray."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import InvalidRequestError
from app.http import validate
from app.responses.request import to_chat
from app.schemas.openai import ChatCompletionRequest, Steering
from app.schemas.responses import ResponsesRequest

PNG = "data:image/png;base64,iVBORw0KGgo="
WEATHER = {"type": "function", "name": "get_weather", "description": "The weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def chat(**body: Any) -> dict[str, Any]:
    out = to_chat(validate(ResponsesRequest, {"model": "auto", "input": "hi", **body}))
    validate(ChatCompletionRequest, out)  # what the route checks next: every translation is a valid chat body
    return out


def refused(**body: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as err:
        chat(**body)
    return err.value


def test_a_string_input_and_instructions_map_with_the_sampling_fields() -> None:
    out = chat(instructions="be brief", max_output_tokens=64, temperature=0.5, top_p=0.9, user="u-1",
               metadata={"k": "v"}, store=True, routeiq={"lambda": 2.0}, reasoning={"effort": "low"})
    assert out == {"model": "auto", "max_tokens": 64, "temperature": 0.5, "top_p": 0.9, "user": "u-1",
                   "routeiq": {"lambda": 2.0},
                   "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}


def test_a_stream_always_asks_for_the_usage_chunk_and_steers_as_one() -> None:
    out = chat(stream=True, max_output_tokens=32)
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    steering = Steering.of(validate(ChatCompletionRequest, out))
    assert (steering.stream, steering.include_usage, steering.max_tokens) == (True, True, 32)


def test_message_items_keep_their_roles_and_join_text_parts() -> None:
    out = chat(input=[
        {"role": "developer", "content": "rules"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"},
                                                         {"type": "input_text", "text": "b"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "c", "annotations": []}]},
        {"role": "system", "content": [{"type": "input_text", "text": "s"}]},
    ])
    assert out["messages"] == [{"role": "system", "content": "rules"}, {"role": "user", "content": "a\nb"},
                               {"role": "assistant", "content": "c"}, {"role": "system", "content": "s"}]


def test_images_become_image_url_parts() -> None:
    out = chat(input=[{"role": "user", "content": [{"type": "input_text", "text": "what is this?"},
                                                   {"type": "input_image", "image_url": PNG, "detail": "low"}]}])
    assert out["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}}]}]


def test_function_calls_join_the_assistant_turn_and_outputs_become_tool_messages() -> None:
    out = chat(tools=[WEATHER], input=[
        {"role": "user", "content": "weather?"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "checking"}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": '{"city":"Rome"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "rain"},
                                                                         {"type": "input_image", "image_url": PNG}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"role": "user", "content": "thanks"},
    ])
    calls = [{"id": f"call_{i}", "type": "function", "function": {"name": "get_weather", "arguments": a}}
             for i, a in ((1, '{"city":"Paris"}'), (2, '{"city":"Rome"}'))]
    assert out["messages"] == [
        {"role": "user", "content": "weather?"}, {"role": "assistant", "content": "checking", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "rain"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG}}]},  # after the tool run
        {"role": "user", "content": "thanks"}]


def test_a_function_call_with_no_assistant_text_before_it_starts_its_own_message() -> None:
    out = chat(input=[{"role": "user", "content": "q"},
                      {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}])
    assert out["messages"][-1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}


def test_tools_and_tool_choice_become_chats() -> None:
    out = chat(tools=[WEATHER, {"type": "function", "name": "noargs", "strict": True}],
               tool_choice={"type": "function", "name": "get_weather"}, parallel_tool_calls=False)
    assert out["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "The weather",
                                          "parameters": WEATHER["parameters"]}},
        {"type": "function", "function": {"name": "noargs", "parameters": {"type": "object"}, "strict": True}}]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert out["parallel_tool_calls"] is False
    assert chat(tools=[WEATHER], tool_choice="required")["tool_choice"] == "required"
    assert "tool_choice" not in chat(tool_choice="none")  # nothing to choose from: left out


def test_text_format_becomes_response_format() -> None:
    assert "response_format" not in chat(text={"format": {"type": "text"}, "verbosity": "low"})
    assert chat(text={"format": {"type": "json_object"}})["response_format"] == {"type": "json_object"}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    out = chat(text={"format": {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}})
    assert out["response_format"] == {"type": "json_schema",
                                      "json_schema": {"name": "thing", "schema": schema, "strict": True}}
    assert refused(text={"format": {"type": "json_schema", "schema": schema}}).param == "text.format"


@pytest.mark.parametrize(("field", "value"), [("previous_response_id", "resp_1"), ("conversation", "conv_1"),
                                              ("background", True), ("prompt", {"id": "pmpt_1"})])
def test_what_needs_stored_state_is_refused_naming_the_field(field: str, value: Any) -> None:
    err = refused(**{field: value})
    assert err.status == 400 and err.param == field and field in str(err)


def test_background_false_is_accepted() -> None:
    assert chat(background=False)["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(("body", "named"), [
    ({"tools": [{"type": "web_search"}]}, "web_search"),
    ({"tools": [{"type": "mcp", "server_label": "x"}]}, "mcp"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "item_reference"),
    ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "web_search_call"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "input_file"),
    ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input_audio"),
    ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
])
def test_unknown_types_are_400s_naming_them(body: dict[str, Any], named: str) -> None:
    assert named in str(refused(**body))


@pytest.mark.parametrize("body", [
    {"input": []},
    {"input": [{"role": "tool", "content": "x"}]},
    {"input": [{"role": "assistant", "content": [{"type": "input_image", "image_url": PNG}]}]},
    {"input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]},
    {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
    {"tool_choice": "required"},
    {"tools": [WEATHER], "tool_choice": {"type": "function", "name": "other"}},
    {"max_output_tokens": 0}, {"max_output_tokens": "5"}, {"temperature": 3}, {"stream": "true"},
    {"metadata": {"k": 1}}, {"model": ""}, {"input": 5},
])
def test_bad_input_is_a_400(body: dict[str, Any]) -> None:
    assert refused(**body).status == 400
