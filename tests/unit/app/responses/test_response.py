"""Chat completions into Responses ``response`` objects (``app.responses.response``), no Ray."""

from __future__ import annotations

from typing import Any

from openai.types.responses import Response

from app.http import validate
from app.providers.base import Usage
from app.responses.response import echo, to_response
from app.schemas.responses import ResponsesRequest

SETTINGS = echo(validate(ResponsesRequest, {"model": "auto", "input": "hi"}))


def answer(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}]}


def test_text_is_one_message_item_and_usage_is_the_exchanges() -> None:
    out = to_response(answer({"content": "Hello"}), "r1", "mid-model", Usage(7, 2, 0.0), SETTINGS)
    parsed = Response.model_validate(out)  # the SDK's own model: every required field is there
    assert (parsed.id, parsed.status, parsed.model) == ("resp_r1", "completed", "mid-model")
    assert parsed.output_text == "Hello"
    assert out["output"] == [{"id": "msg_r1", "type": "message", "role": "assistant", "status": "completed",
                              "content": [{"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}]}]
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens, parsed.usage.total_tokens) == (7, 2, 9)  # type: ignore[union-attr]
    assert out["incomplete_details"] is None and out["error"] is None


def test_tool_calls_are_function_call_items_keeping_the_call_id() -> None:
    calls = [{"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"P"}'}},
             {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]
    out = to_response(answer({"content": None, "tool_calls": calls}, "tool_calls"), "r2", "m", Usage(), SETTINGS)
    Response.model_validate(out)
    assert out["output"] == [
        {"id": "fc_r2_0", "type": "function_call", "call_id": "call_a", "name": "get_weather",
         "arguments": '{"city":"P"}', "status": "completed"},
        {"id": "fc_r2_1", "type": "function_call", "call_id": "call_b", "name": "get_time", "arguments": "{}",
         "status": "completed"}]


def test_a_length_stop_is_incomplete_with_its_reason() -> None:
    out = to_response(answer({"content": "Hel"}, "length"), "r3", "m", Usage(1, 1, 0.0), SETTINGS)
    assert out["status"] == "incomplete" and out["incomplete_details"] == {"reason": "max_output_tokens"}
    assert out["output"][0]["status"] == "incomplete"


def test_a_refusal_is_a_refusal_part() -> None:
    out = to_response(answer({"content": None, "refusal": "no"}), "r4", "m", Usage(), SETTINGS)
    assert out["output"][0]["content"] == [{"type": "refusal", "refusal": "no"}]


def test_an_odd_upstream_answer_is_an_empty_response_not_a_crash() -> None:
    for odd in ({}, {"choices": []}, {"choices": ["x"]}, {"choices": [{"message": "x"}]}):
        out = to_response(odd, "r5", "m", Usage(), SETTINGS)
        assert out["output"] == [] and out["status"] == "completed"


def test_the_requests_settings_are_echoed() -> None:
    request = validate(ResponsesRequest, {
        "model": "auto", "input": "hi", "instructions": "be brief", "metadata": {"k": "v"}, "temperature": 0.2,
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}], "tool_choice": "required",
        "parallel_tool_calls": False, "max_output_tokens": 9, "text": {"format": {"type": "json_object"}}})
    parsed = Response.model_validate(to_response(answer({"content": "{}"}), "r6", "m", Usage(), echo(request)))
    assert (parsed.instructions, parsed.metadata, parsed.temperature, parsed.tool_choice) == (
        "be brief", {"k": "v"}, 0.2, "required")
    assert parsed.parallel_tool_calls is False and parsed.max_output_tokens == 9
    assert parsed.tools[0].type == "function" and parsed.tools[0].name == "f"  # type: ignore[union-attr]
    assert parsed.text.format.type == "json_object"  # type: ignore[union-attr]
