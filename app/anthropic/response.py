"""An OpenAI chat completion (the gateway's JSON answer) as an Anthropic ``message``.

The first choice's text becomes a ``text`` block and its ``tool_calls`` ``tool_use``
blocks (arguments parsed: Anthropic's ``input`` is an object); ``finish_reason`` maps
to ``stop_reason`` (``STOP_REASONS``). Usage is the exchange's, so an upstream that
reported none is answered with the same estimate it is charged. ``stop_sequence`` is
always null: an OpenAI upstream does not say which stop sequence ended the answer, so
a stop by a sequence reads ``end_turn``.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.chat_stream import as_object
from app.errors import UpstreamError
from app.providers.base import Usage

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}


def stop_reason(finish_reason: Any) -> str:
    """Anthropic's ``stop_reason`` for an OpenAI ``finish_reason`` (``end_turn`` when unknown)."""
    return STOP_REASONS.get(str(finish_reason), "end_turn")


def usage_of(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}


def tool_input(arguments: Any, name: str) -> dict[str, Any]:
    """A tool call's ``arguments`` (a JSON string) as ``input``; 502 if not a JSON object."""
    if arguments in (None, ""):
        return {}
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str | bytes) else arguments
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise UpstreamError(f"the upstream called tool `{name}` with arguments that are not a JSON object")
    return parsed


def _tool_use(call: dict[str, Any]) -> dict[str, Any]:
    function = as_object(call.get("function"))
    name = str(function.get("name") or "")
    return {"type": "tool_use", "id": str(call.get("id") or ""), "name": name,
            "input": tool_input(function.get("arguments"), name)}


def to_message(answer: dict[str, Any], message_id: str, model: str, usage: Usage) -> dict[str, Any]:
    """The Anthropic message for a chat completion body."""
    choices = answer.get("choices")
    choice = as_object(choices[0] if isinstance(choices, list) and choices else None)
    message = as_object(choice.get("message"))
    content: list[dict[str, Any]] = []
    if text := message.get("content"):
        content.append({"type": "text", "text": str(text)})
    content += [_tool_use(call) for call in message.get("tool_calls") or () if isinstance(call, dict)]
    return {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason(choice.get("finish_reason")), "stop_sequence": None,
            "usage": usage_of(usage)}
