"""The gateway's OpenAI SSE stream into Anthropic's events (``app.anthropic.stream``), no Ray."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from app.anthropic.stream import MessageStream
from app.errors import UpstreamTimeoutError, sse_error_event


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    payload = {"id": "c", "object": "chat.completion.chunk", "choices": choices, **extra}
    return b"data: " + orjson.dumps(payload) + b"\n\n"


TEXT = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), chunk({"content": "lo"}),
        chunk({}, "stop"), chunk(usage={"prompt_tokens": 9, "completion_tokens": 2, "cost": 0.1}), b"data: [DONE]\n\n"]


def events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in raw.split(b"\n\n"):
        if not block:
            continue
        name_line, data_line = block.split(b"\n")
        name, data = name_line.removeprefix(b"event: ").decode(), orjson.loads(data_line.removeprefix(b"data: "))
        assert data["type"] == name
        out.append((name, data))
    return out


def run(chunks: list[bytes], split: int | None = None) -> list[tuple[str, dict[str, Any]]]:
    stream = MessageStream("msg_1", "mid-model", 5)
    raw = b"".join(chunks)
    pieces = [raw[i:i + split] for i in range(0, len(raw), split)] if split else chunks
    return events(b"".join(stream.feed(p) for p in pieces) + stream.finish())


def test_a_text_stream_is_anthropics_event_sequence() -> None:
    got = run(TEXT)
    assert [n for n, _ in got] == ["message_start", "ping", "content_block_start", "content_block_delta",
                                   "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    start = got[0][1]["message"]
    assert (start["id"], start["model"], start["role"], start["content"]) == ("msg_1", "mid-model", "assistant", [])
    assert start["usage"] == {"input_tokens": 5, "output_tokens": 0}  # the prompt estimate
    assert got[2][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert [d["delta"] for _, d in got[3:5]] == [{"type": "text_delta", "text": "Hel"},
                                                  {"type": "text_delta", "text": "lo"}]
    assert got[6][1] == {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                         "usage": {"input_tokens": 9, "output_tokens": 2}}


@pytest.mark.parametrize("split", [1, 7, 64])
def test_events_split_across_reads_translate_the_same(split: int) -> None:
    assert run(TEXT, split) == run(TEXT)


def test_nothing_is_held_back_past_a_complete_event() -> None:
    stream = MessageStream("m", "x", 0)
    first = events(stream.feed(TEXT[0] + TEXT[1][:10]))
    assert [n for n, _ in first] == ["message_start", "ping"]
    assert [n for n, _ in events(stream.feed(TEXT[1][10:]))] == ["content_block_start", "content_block_delta"]


def test_tool_calls_stream_as_tool_use_blocks_with_input_json_deltas() -> None:
    head = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": ""}}
    second = {"index": 1, "id": "call_2", "type": "function", "function": {"name": "clock", "arguments": "{}"}}
    got = run([chunk({"content": "Looking."}), chunk({"tool_calls": [head]}),
               chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
               chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
               chunk({"tool_calls": [second]}), chunk({}, "tool_calls"), b"data: [DONE]\n\n"])
    kinds = [(n, d.get("index")) for n, d in got]
    assert kinds == [("message_start", None), ("ping", None),
                     ("content_block_start", 0), ("content_block_delta", 0), ("content_block_stop", 0),
                     ("content_block_start", 1), ("content_block_delta", 1), ("content_block_delta", 1),
                     ("content_block_stop", 1), ("content_block_start", 2), ("content_block_delta", 2),
                     ("content_block_stop", 2), ("message_delta", None), ("message_stop", None)]
    assert got[5][1]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "weather", "input": {}}
    assert "".join(d["delta"]["partial_json"] for n, d in got if d.get("index") == 1 and n.endswith("delta")) == \
        '{"city": "Paris"}'
    assert got[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_without_usage_the_counts_are_estimates() -> None:
    got = run([chunk({"content": "x" * 10}), chunk({}, "length"), b"data: [DONE]\n\n"])
    delta = got[-2][1]
    assert delta["delta"]["stop_reason"] == "max_tokens"
    assert delta["usage"] == {"input_tokens": 5, "output_tokens": 3}  # 10 characters at ~4 a token


def test_a_failure_after_the_start_ends_with_an_error_event_and_no_message_stop() -> None:
    got = run([chunk({"content": "partial"}), sse_error_event(UpstreamTimeoutError("mid-model: stream silent"))])
    assert [n for n, _ in got][-2:] == ["content_block_delta", "error"]
    assert got[-1][1]["error"] == {"type": "api_error", "message": "mid-model: stream silent"}


def test_an_empty_stream_still_starts_and_stops_the_message() -> None:
    assert [n for n, _ in run([])] == ["message_start", "ping", "message_delta", "message_stop"]


def test_keep_alive_comments_and_odd_chunks_are_skipped() -> None:
    got = run([b": keep-alive\n\n", b"data: not json\n\n", b"data: [1]\n\n", *TEXT])
    assert [n for n, _ in got][:3] == ["message_start", "ping", "content_block_start"]


async def test_translate_closes_its_source_however_it_ends() -> None:
    closed: list[bool] = []

    async def source() -> AsyncIterator[bytes]:
        try:
            for c in TEXT:
                yield c
        finally:
            closed.append(True)

    out = MessageStream("m", "x", 0).translate(source())
    first = await anext(out)
    assert first.startswith(b"event: message_start")
    await out.aclose()  # the client went away after the first event
    assert closed == [True]
    whole = b"".join([c async for c in MessageStream("m", "x", 0).translate(source())])
    assert whole.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n') and closed == [True, True]
