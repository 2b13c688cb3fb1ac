"""An OpenAI chat completion (the gateway's JSON answer) as a Responses ``response`` object.

The first choice's text becomes a ``message`` item with one ``output_text`` part (a
refusal a ``refusal`` part), each tool call a ``function_call`` item (``call_id`` is
the chat call's id, so the caller's ``function_call_output`` finds it). A
``finish_reason`` of ``length`` or ``content_filter`` makes the response
``incomplete`` with that reason, as OpenAI's does. Usage is the exchange's, so an
upstream that reported none is answered with the same estimate it is charged. The
request's settings (tools, tool_choice, instructions, metadata...) are echoed, as
OpenAI echoes them; ``envelope`` is shared with the stream's lifecycle events.
"""

from __future__ import annotations

import time
from typing import Any

from app.chat_stream import as_object
from app.providers.base import Usage
from app.schemas.responses import FunctionChoice, ResponsesRequest

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
"""A chat ``finish_reason`` that leaves the response incomplete -> OpenAI's reason."""


def usage_of(prompt: int, completion: int) -> dict[str, Any]:
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion}


def echo(request: ResponsesRequest) -> dict[str, Any]:
    """The request's settings as OpenAI echoes them on every response object."""
    form = request.text.format if request.text is not None and request.text.format is not None else None
    choice = request.tool_choice
    return {
        "instructions": request.instructions, "metadata": request.metadata or {},
        "tools": [t.model_dump(exclude_none=True) for t in request.tools or ()],
        "tool_choice": choice.model_dump() if isinstance(choice, FunctionChoice) else choice or "auto",
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "temperature": request.temperature, "top_p": request.top_p,
        "max_output_tokens": request.max_output_tokens, "user": request.user,
        "previous_response_id": None, "background": False, "store": bool(request.store),
        "text": {"format": form.model_dump(by_alias=True, exclude_none=True) if form else {"type": "text"}},
        "truncation": "disabled", "reasoning": None}


def envelope(response_id: str, model: str, settings: dict[str, Any], status: str, output: list[dict[str, Any]],
             usage: dict[str, Any] | None, finish_reason: Any = None, created_at: int | None = None) -> dict[str, Any]:
    """A ``response`` object; ``incomplete_details`` follows from ``finish_reason``."""
    reason = INCOMPLETE.get(str(finish_reason))
    created = int(time.time()) if created_at is None else created_at
    return {"id": response_id, "object": "response", "created_at": created, "status": status,
            "error": None, "incomplete_details": {"reason": reason} if status == "incomplete" and reason else None,
            "model": model, "output": output, "usage": usage, **settings}


def status_of(finish_reason: Any) -> str:
    return "incomplete" if str(finish_reason) in INCOMPLETE else "completed"


def message_item(item_id: str, text: str, refusal: str | None, status: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if text or not refusal:
        content.append({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": content}


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "call_id": call_id, "name": name, "arguments": arguments,
            "status": status}


def _calls(message: dict[str, Any], rid: str) -> list[dict[str, Any]]:
    out = []
    for i, call in enumerate(c for c in message.get("tool_calls") or () if isinstance(c, dict)):
        function = as_object(call.get("function"))
        arguments = function.get("arguments")
        call_id = str(call.get("id") or f"call_{rid}_{i}")
        out.append(call_item(f"fc_{rid}_{i}", call_id, str(function.get("name") or ""),
                             arguments if isinstance(arguments, str) else "{}"))
    return out


def to_response(answer: dict[str, Any], rid: str, model: str, usage: Usage,
                settings: dict[str, Any]) -> dict[str, Any]:
    """The ``response`` object for a chat completion body (ids ``resp_``, ``msg_``, ``fc_`` + ``rid``)."""
    choices = answer.get("choices")
    choice = as_object(choices[0] if isinstance(choices, list) and choices else None)
    message = as_object(choice.get("message"))
    status = status_of(choice.get("finish_reason"))
    output: list[dict[str, Any]] = []
    text, refusal = message.get("content"), message.get("refusal")
    if text or refusal:
        output.append(message_item(f"msg_{rid}", str(text or ""), str(refusal) if refusal else None, status))
    output += _calls(message, rid)
    return envelope(f"resp_{rid}", model, settings, status, output,
                    usage_of(usage.prompt_tokens, usage.completion_tokens), choice.get("finish_reason"))
