"""The fake upstream's ``POST /v1/responses``: OpenAI's Responses API, plain and streamed.

For the gateway's native pass-through tests: the answer echoes the last user turn's text
(``reply_tokens``) in one ``output_text`` part, with OpenAI's usage (``input_tokens``: the
prompt's words, ``output_tokens``: the answer's tokens). A stream is the typed events of
that one message, ending with ``response.completed`` (which carries the usage). The body
is recorded (``FakeUpstream.requests``) so tests can see it arrived as the client sent it.
The ``[[fake ...]]`` knobs ``error``, ``framing``, ``tokens`` and ``usage=none`` apply.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

_ids = itertools.count()


def last_user_text(body: dict[str, Any]) -> str:
    """The last user turn's text: ``input`` itself when a string, else its last user item's text parts."""
    given = body.get("input")
    if isinstance(given, str):
        return given
    for item in reversed(given if isinstance(given, list) else []):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            return " ".join(str(p.get("text", "")) for p in content or () if isinstance(p, dict))
    return ""


def usage_of(body: dict[str, Any], output: int) -> dict[str, Any]:
    words = len(last_user_text(body).split()) + len(str(body.get("instructions") or "").split())
    prompt = max(1, words)
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + output}


def response(body: dict[str, Any], tokens: list[str], usage: dict[str, Any] | None,
             status: str = "completed") -> dict[str, Any]:
    n = next(_ids)
    text = "".join(tokens)
    item = {"type": "message", "id": f"msg_fake_{n}", "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}] if status == "completed" else []}
    out = {"id": f"resp_fake_{n}", "object": "response", "created_at": int(time.time()), "status": status,
           "model": body.get("model"), "output": [item] if status == "completed" else [],
           "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None,
           "incomplete_details": None, "instructions": body.get("instructions"), "metadata": body.get("metadata")}
    return {**out, "usage": usage} if usage is not None else out


def events(body: dict[str, Any], tokens: list[str], usage: dict[str, Any] | None) -> list[tuple[str, dict[str, Any]]]:
    """The typed events of ``response(body, tokens, usage)``, as OpenAI streams them."""
    done = response(body, tokens, usage)
    started = {**done, "status": "in_progress", "output": []}
    started.pop("usage", None)
    item = done["output"][0]
    part = item["content"][0]
    where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
    out: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": started}),
        ("response.in_progress", {"response": started}),
        ("response.output_item.added", {"output_index": 0, "item": {**item, "status": "in_progress", "content": []}}),
        ("response.content_part.added", {**where, "part": {**part, "text": ""}}),
    ]
    out += [("response.output_text.delta", {**where, "delta": t, "logprobs": []}) for t in tokens]
    out += [("response.output_text.done", {**where, "text": part["text"], "logprobs": []}),
            ("response.content_part.done", {**where, "part": part}),
            ("response.output_item.done", {"output_index": 0, "item": item}),
            ("response.completed", {"response": done})]
    return [(kind, {**payload, "sequence_number": i}) for i, (kind, payload) in enumerate(out)]

