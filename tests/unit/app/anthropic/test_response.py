"""OpenAI chat completions into Anthropic messages, and errors into Anthropic's envelope."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.anthropic.errors import error_event, to_anthropic_error
from app.anthropic.response import to_message
from app.errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    UpstreamError,
    UpstreamTimeoutError,
    sse_error_event,
)
from app.providers.base import Usage


def completion(message: dict[str, Any], finish: str | None = "stop") -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion", "model": "up",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}]}


def test_a_text_answer() -> None:
    out = to_message(completion({"content": "hello"}), "msg_1", "mid-model", Usage(7, 2, 0.1))
    assert out == {"id": "msg_1", "type": "message", "role": "assistant", "model": "mid-model",
                   "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn", "stop_sequence": None,
                   "usage": {"input_tokens": 7, "output_tokens": 2}}


def test_tool_calls_become_tool_use_blocks_after_the_text() -> None:
    calls = [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}},
             {"id": "call_2", "type": "function", "function": {"name": "clock", "arguments": ""}}]
    out = to_message(completion({"content": "Looking.", "tool_calls": calls}, "tool_calls"), "m", "x", Usage())
    assert out["content"] == [{"type": "text", "text": "Looking."},
                              {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
                              {"type": "tool_use", "id": "call_2", "name": "clock", "input": {}}]
    assert out["stop_reason"] == "tool_use"


@pytest.mark.parametrize(("finish", "reason"), [("stop", "end_turn"), ("length", "max_tokens"),
                                                ("tool_calls", "tool_use"), ("content_filter", "refusal"),
                                                (None, "end_turn")])
def test_stop_reasons(finish: str | None, reason: str) -> None:
    assert to_message(completion({"content": "x"}, finish), "m", "x", Usage())["stop_reason"] == reason


def test_an_empty_or_odd_answer_is_an_empty_message_not_a_crash() -> None:
    for odd in ({}, {"choices": []}, {"choices": ["x"]}, {"choices": [{"message": None}]}):
        out = to_message(odd, "m", "x", Usage())
        assert out["content"] == [] and out["stop_reason"] == "end_turn"


def test_arguments_that_are_not_an_object_are_a_502() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1, 2"}}
    with pytest.raises(UpstreamError):
        to_message(completion({"content": None, "tool_calls": [call]}), "m", "x", Usage())


@pytest.mark.parametrize(("err", "status", "kind"), [
    (InvalidRequestError("bad"), 400, "invalid_request_error"),
    (AuthenticationError("who"), 401, "authentication_error"),
    (PermissionDeniedError("no"), 403, "permission_error"),
    (NotFoundError("gone"), 404, "not_found_error"),
    (PayloadTooLargeError("big"), 413, "request_too_large"),
    (RateLimitError("slow down", retry_after=3), 429, "rate_limit_error"),
    (OverloadedError("full", retry_after=1), 503, "overloaded_error"),
    (UpstreamError("up"), 502, "api_error"),
    (UpstreamTimeoutError("late"), 504, "api_error"),
    (KeyError("secret internals"), 500, "api_error"),
])
def test_errors_take_anthropics_envelope_with_routeiqs_status(err: BaseException, status: int, kind: str) -> None:
    got_status, body, headers = to_anthropic_error(err)
    error = orjson.loads(body)
    assert got_status == status and error["type"] == "error" and error["error"]["type"] == kind
    assert "secret" not in error["error"]["message"]
    if isinstance(err, RateLimitError):
        assert headers == {"retry-after": "3"}


def test_a_mid_stream_error_event_is_anthropics_error_event() -> None:
    openai_event = sse_error_event(UpstreamTimeoutError("mid-model: stream silent"))
    error = orjson.loads(openai_event.split(b"\n\n")[0][6:])["error"]
    out = error_event(error)
    assert out.startswith(b"event: error\ndata: ") and out.endswith(b"\n\n")
    assert orjson.loads(out.split(b"data: ")[1]) == {
        "type": "error", "error": {"type": "api_error", "message": "mid-model: stream silent"}}
    assert b'"overloaded_error"' in error_event({"type": "service_unavailable", "message": "x"})
