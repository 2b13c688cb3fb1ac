"""The gateway's OpenAI SSE stream into the Responses API's events (``app.responses.stream``), no Ray."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from app.errors import RateLimitError, sse_error_event
from app.responses.stream import ResponseStream

EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    payload = {"id": "c", "object": "chat.completion.chunk", "choices": choices, **extra}
    return b"data: " + orjson.dumps(payload) + b"\n\n"


USAGE = chunk(usage={"prompt_tokens": 9, "completion_tokens": 2})
TEXT = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), chunk({"content": "lo"}),
        chunk({}, "stop"), USAGE, b"data: [DONE]\n\n"]


def call(index: int, arguments: str, name: str | None = None) -> dict[str, Any]:
    start = {"id": f"call_{index}", "type": "function"} if name else {}
    return {"index": index, **start, "function": {"name": name, "arguments": arguments} if name
            else {"arguments": arguments}}


TOOLS = [chunk({"role": "assistant", "content": "Let me check."}), chunk({"tool_calls": [call(0, "", "get_weather")]}),
         chunk({"tool_calls": [call(0, '{"city":')]}), chunk({"tool_calls": [call(0, '"Paris"}')]}),
         chunk({"tool_calls": [call(1, "{}", "get_time")]}), chunk({}, "tool_calls"), USAGE, b"data: [DONE]\n\n"]


def events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for block in raw.split(b"\n\n"):
        if not block:
            continue
        name_line, data_line = block.split(b"\n")
        data = orjson.loads(data_line.removeprefix(b"data: "))
        assert data["type"] == name_line.removeprefix(b"event: ").decode()
        EVENT.validate_python(data)  # the SDK's own typed event: every required field is there
        out.append(data)
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    return out


def run(chunks: list[bytes], split: int | None = None) -> list[dict[str, Any]]:
    stream = ResponseStream("r1", "mid-model", {"tools": [], "tool_choice": "auto", "parallel_tool_calls": True}, 5)
    raw = b"".join(chunks)
    pieces = [raw[i:i + split] for i in range(0, len(raw), split)] if split else chunks
    return events(b"".join(stream.feed(p) for p in pieces) + stream.finish())


def test_a_text_stream_is_the_responses_event_sequence() -> None:
    got = run(TEXT)
    assert [e["type"] for e in got] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    assert got[0]["response"]["id"] == "resp_r1" and got[0]["response"]["status"] == "in_progress"
    assert got[0]["response"]["created_at"] == got[-1]["response"]["created_at"]
    assert [e["delta"] for e in got[4:6]] == ["Hel", "lo"] and got[6]["text"] == "Hello"
    assert {e["item_id"] for e in got[3:8]} == {"msg_r1"}
    final = got[-1]["response"]
    assert final["status"] == "completed" and final["model"] == "mid-model"
    assert final["output"] == [got[8]["item"]] and final["output"][0]["content"][0]["text"] == "Hello"
    usage = final["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (9, 2, 11)


@pytest.mark.parametrize("split", [1, 7, 64])
def test_events_split_across_reads_translate_the_same(split: int) -> None:
    strip = [{k: v for k, v in e.items() if k != "response"} for e in run(TEXT, split)]
    assert strip == [{k: v for k, v in e.items() if k != "response"} for e in run(TEXT)]


def test_tool_calls_are_function_call_items_with_argument_deltas() -> None:
    got = run(TOOLS)
    kinds = [e["type"] for e in got]
    assert kinds.count("response.output_item.added") == 3 and kinds.count("response.output_item.done") == 3
    added = [e for e in got if e["type"] == "response.output_item.added"]
    assert [(e["output_index"], e["item"]["type"]) for e in added] == [(0, "message"), (1, "function_call"),
                                                                       (2, "function_call")]
    assert added[1]["item"]["call_id"] == "call_0" and added[1]["item"]["name"] == "get_weather"
    # the message item is done before the first call is added (its text ended)
    assert kinds.index("response.output_text.done") < kinds.index("response.output_item.added", 3)
    deltas = [e["delta"] for e in got
              if e["type"] == "response.function_call_arguments.delta" and e["output_index"] == 1]
    assert "".join(deltas) == '{"city":"Paris"}'
    done = {e["output_index"]: e["arguments"] for e in got if e["type"] == "response.function_call_arguments.done"}
    assert done == {1: '{"city":"Paris"}', 2: "{}"}
    final = got[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["message", "function_call", "function_call"]
    assert all(i["status"] == "completed" for i in final["output"])


def test_a_length_stop_ends_with_response_incomplete() -> None:
    got = run([chunk({"content": "Hel"}), chunk({}, "length"), b"data: [DONE]\n\n"])
    assert got[-1]["type"] == "response.incomplete"
    assert got[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert got[-1]["response"]["output"][0]["status"] == "incomplete"


def test_without_upstream_usage_the_estimate_is_reported() -> None:
    got = run([chunk({"content": "x" * 10}), chunk({}, "stop")])  # no usage chunk, no [DONE]
    usage = got[-1]["response"]["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (5, 3)  # the prompt estimate; ceil(10 / 4)


def test_an_error_after_the_start_is_an_error_event_and_response_failed() -> None:
    got = run([chunk({"content": "Hel"}), sse_error_event(RateLimitError("slow down"))])
    assert [e["type"] for e in got][-2:] == ["error", "response.failed"]
    assert got[-2]["message"] == "slow down"
    failed = got[-1]["response"]
    assert failed["status"] == "failed" and failed["error"] == {"code": "rate_limit_exceeded", "message": "slow down"}
    assert "response.completed" not in [e["type"] for e in got]


def test_an_error_before_any_chunk_still_starts_the_response() -> None:
    got = run([sse_error_event(RuntimeError("boom"))])
    assert [e["type"] for e in got] == ["response.created", "response.in_progress", "error", "response.failed"]
    assert got[-1]["response"]["error"]["code"] == "server_error"


def test_junk_events_are_skipped() -> None:
    got = run([b": keep-alive\n\n", b"data: not json\n\n", b"data: [1]\n\n", *TEXT])
    assert got[-1]["response"]["output"][0]["content"][0]["text"] == "Hello"


async def test_translate_closes_the_source() -> None:
    closed = []

    async def source() -> AsyncIterator[bytes]:
        try:
            for c in TEXT:
                yield c
        finally:
            closed.append(True)

    stream = ResponseStream("r", "m", {"tools": [], "tool_choice": "auto", "parallel_tool_calls": True}, 0)
    out = b"".join([c async for c in stream.translate(source())])
    assert closed and events(out)[-1]["type"] == "response.completed"
