"""The fake upstream's ``POST /v1/messages``: Anthropic's Messages API, plain and streamed.

Deterministic like the chat endpoint: the answer echoes the last user turn's text
(``reply_tokens``), padded to ``tokens``; a request with ``thinking`` enabled gets a
``thinking`` block (with a signature) first. Usage has Anthropic's four counts: the
prompt's words, split into the text of blocks marked ``cache_control`` (written to the
"cache" the first time this upstream sees that text, read from it afterwards) and the
rest. The body and the Anthropic headers received are recorded (``FakeUpstream.requests``)
so tests can check what arrived untouched. The ``[[fake ...]]`` knobs apply: ``error``,
``framing``, ``tokens``, ``usage=none`` (no usage at all).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson
from aiohttp import web

_ids = itertools.count()
_LINE_ENDS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}
THINKING = "fake thinking about it"
SIGNATURE = "fake-signature"


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or () if isinstance(b, dict)]


def _texts(body: dict[str, Any]) -> list[tuple[str, bool]]:
    """Every text of the prompt (system, then turns), and whether it is marked ``cache_control``."""
    system = body.get("system")
    parts = _blocks(system) if system else []
    for message in body.get("messages") or ():
        parts += _blocks(message.get("content") if isinstance(message, dict) else None)
    return [(str(b.get("text") or ""), "cache_control" in b) for b in parts if b.get("type") == "text"]


def last_user_text(body: dict[str, Any]) -> str:
    """The last user turn's text (its text blocks joined by a space)."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return " ".join(b.get("text", "") for b in _blocks(message.get("content")) if b.get("type") == "text")
    return ""


def usage_of(body: dict[str, Any], seen: set[str], output: int) -> dict[str, int]:
    """Anthropic's usage for ``body``; ``seen``: cached texts this upstream already wrote."""
    written = read = fresh = 0
    for text, cached in _texts(body):
        words = len(text.split())
        if not cached:
            fresh += words
        elif text in seen:
            read += words
        else:
            seen.add(text)
            written += words
    return {"input_tokens": max(1, fresh), "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read, "output_tokens": output}


def refusal(body: dict[str, Any]) -> dict[str, Any] | None:
    """Anthropic's 400 for a body it would refuse (a few checks: ``messages`` a list, ``max_tokens`` an int)."""
    if isinstance(body.get("messages"), list) and isinstance(body.get("max_tokens"), int):
        return None
    return {"type": "error", "error": {"type": "invalid_request_error", "message": "messages and max_tokens"}}


def _thinking(body: dict[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") == "enabled"


def message(body: dict[str, Any], tokens: list[str], usage: dict[str, int] | None) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if _thinking(body):
        content.append({"type": "thinking", "thinking": THINKING, "signature": SIGNATURE})
    content.append({"type": "text", "text": "".join(tokens)})
    out = {"id": f"msg_fake_{next(_ids)}", "type": "message", "role": "assistant", "model": body.get("model"),
           "content": content, "stop_reason": "end_turn", "stop_sequence": None}
    return {**out, "usage": usage} if usage is not None else out


def event(kind: str, payload: dict[str, Any], framing: str) -> bytes:
    end = _LINE_ENDS.get(framing, b"\n")
    data = orjson.dumps({"type": kind, **payload})
    return b"event: " + kind.encode() + end + b"data: " + data + end + end


def events(body: dict[str, Any], tokens: list[str], usage: dict[str, int] | None) -> list[tuple[str, dict[str, Any]]]:
    """The stream of ``message(body, tokens, usage)`` as Anthropic sends it."""
    head = {k: v for k, v in message(body, tokens, None).items() if k != "content"}
    start_usage = {**usage, "output_tokens": 1} if usage is not None else None
    out: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"message": {**head, "content": [], "stop_reason": None,
                                       **({"usage": start_usage} if start_usage else {})}}), ("ping", {})]
    index = 0
    if _thinking(body):
        out += [("content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
                ("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta", "thinking": THINKING}}),
                ("content_block_delta", {"index": 0, "delta": {"type": "signature_delta", "signature": SIGNATURE}}),
                ("content_block_stop", {"index": 0})]
        index = 1
    out.append(("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}}))
    out += [("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": t}}) for t in tokens]
    out.append(("content_block_stop", {"index": index}))
    delta: dict[str, Any] = {"delta": {"stop_reason": "end_turn", "stop_sequence": None}}
    if usage is not None:
        delta["usage"] = {"output_tokens": usage["output_tokens"]}
    return [*out, ("message_delta", delta), ("message_stop", {})]


async def stream(request: web.Request, kinds: list[tuple[str, dict[str, Any]]], framing: str,
                 itl_ms: float) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
    await resp.prepare(request)
    for i, (kind, payload) in enumerate(kinds):
        if i and itl_ms:
            await asyncio.sleep(itl_ms / 1000)
        await resp.write(event(kind, payload, framing))
    await resp.write_eof()
    return resp
