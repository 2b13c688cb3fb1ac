"""A validated Anthropic Messages request as the OpenAI chat body the gateway serves.

What maps where (docs/coming-from-litellm.md has the table):

- ``system`` (a string or text blocks) becomes the first, ``system`` message;
- a ``user`` turn's ``tool_result`` blocks become ``tool`` messages, placed before the
  rest of the turn (OpenAI wants them right after the assistant's ``tool_calls``); its
  text and images become the user message (text only: one string, so upstreams without
  content arrays serve it too); images inside a tool result follow in a user message
  (a ``tool`` message carries text only);
- an ``assistant`` turn's ``tool_use`` blocks become ``tool_calls``, its text the content;
  ``thinking`` blocks are dropped;
- blocks and server tools only a native upstream serves (``document``, ``web_search_…``)
  are left out: such a request is refused (400) before any deployment that would get this
  translation is called (``app.anthropic.native``);
- ``tools``/``tool_choice`` become OpenAI functions and choices, ``stop_sequences``
  ``stop``, ``metadata.user_id`` ``user``; ``top_k`` has no equivalent and is dropped.

A stream always asks for the usage chunk: the translated stream ends with Anthropic's
``message_delta`` usage. Must not: read anything but validated values (the request
was validated by ``app.schemas.anthropic``), or decide anything but shapes.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.errors import InvalidRequestError
from app.schemas.anthropic import (
    CountTokensRequest,
    ImageBlock,
    Message,
    MessagesRequest,
    TextBlock,
    ThinkingBlock,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
    URLSource,
)

TOOL_ERROR_PREFIX = "Error: "
"""Put before a ``tool_result`` marked ``is_error`` (an OpenAI tool message has no flag)."""


def to_chat(request: CountTokensRequest) -> dict[str, Any]:
    """The OpenAI chat body for ``request`` (a full Messages request, or count_tokens' part)."""
    messages: list[dict[str, Any]] = []
    if system := _system_text(request.system):
        messages.append({"role": "system", "content": system})
    for message in request.messages:
        messages.extend(_turn(message))
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    tools = [t for t in request.tools or () if isinstance(t, Tool)]  # server tools: native only
    if tools:
        body["tools"] = [{"type": "function", "function": _function(t.name, t.description, t.input_schema)}
                         for t in tools]
    if request.tool_choice is not None:
        body.update(_tool_choice(request.tool_choice, bool(tools)))
    if isinstance(request, MessagesRequest):
        body.update(_sampling(request))
    return body


def _sampling(request: MessagesRequest) -> dict[str, Any]:
    out: dict[str, Any] = {"max_tokens": request.max_tokens}
    if request.stream:
        out |= {"stream": True, "stream_options": {"include_usage": True}}
    if request.stop_sequences:
        out["stop"] = list(request.stop_sequences)
    for name in ("temperature", "top_p"):
        if (value := getattr(request, name)) is not None:
            out[name] = value
    if request.metadata is not None and request.metadata.user_id is not None:
        out["user"] = request.metadata.user_id
    if request.routeiq is not None:
        out["routeiq"] = request.routeiq.model_dump(by_alias=True, exclude_none=True)
    return out


def _system_text(system: str | list[TextBlock] | None) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    return "\n".join(block.text for block in system)


def _function(name: str, description: str | None, schema: dict[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name, "parameters": schema}
    if description:
        function["description"] = description
    return function


def _tool_choice(choice: ToolChoice, has_tools: bool) -> dict[str, Any]:
    if choice.type == "tool" and not choice.name:
        raise InvalidRequestError("tool_choice.name: required when tool_choice.type is `tool`",
                                  param="tool_choice.name")
    if not has_tools:
        if choice.type == "none":
            return {}  # nothing to choose from: OpenAI refuses a tool_choice without tools
        raise InvalidRequestError("tool_choice: requires tools", param="tool_choice")
    out: dict[str, Any] = {"tool_choice": {"auto": "auto", "any": "required", "none": "none"}.get(choice.type)}
    if choice.type == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    if choice.disable_parallel_tool_use and has_tools:
        out["parallel_tool_calls"] = False
    return out


def _turn(message: Message) -> list[dict[str, Any]]:
    """One Anthropic turn as one or more OpenAI messages."""
    if isinstance(message.content, str):
        return [{"role": message.role, "content": message.content}]
    if message.role == "assistant":
        return [_assistant(message.content)]
    return _user(message.content)


def _assistant(blocks: list[Any]) -> dict[str, Any]:
    text = [b.text for b in blocks if isinstance(b, TextBlock)]
    calls = [{"id": b.id, "type": "function",
              "function": {"name": b.name, "arguments": orjson.dumps(b.input).decode()}}
             for b in blocks if isinstance(b, ToolUseBlock)]
    if any(isinstance(b, ImageBlock | ToolResultBlock) for b in blocks):
        raise InvalidRequestError("an assistant turn may hold text, tool_use and thinking blocks only",
                                  param="messages")
    out: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text else None}
    if calls:
        out["tool_calls"] = calls
    return out


def _user(blocks: list[Any]) -> list[dict[str, Any]]:
    if any(isinstance(b, ToolUseBlock | ThinkingBlock) for b in blocks):
        raise InvalidRequestError("a user turn may hold text, image and tool_result blocks only",
                                  param="messages")
    out: list[dict[str, Any]] = []
    result_images: list[dict[str, Any]] = []
    for block in blocks:
        if isinstance(block, ToolResultBlock):
            text, images = _result_parts(block)
            out.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": text})
            result_images += images
    if result_images:
        out.append({"role": "user", "content": result_images})
    rest = [b for b in blocks if isinstance(b, TextBlock | ImageBlock)]
    if rest:
        out.append({"role": "user", "content": _user_content(rest)})
    return out


def _result_parts(block: ToolResultBlock) -> tuple[str, list[dict[str, Any]]]:
    if isinstance(block.content, str):
        text, images = block.content, []
    else:
        text = "\n".join(p.text for p in block.content if isinstance(p, TextBlock))
        images = [_image_part(p) for p in block.content if isinstance(p, ImageBlock)]
    return (TOOL_ERROR_PREFIX + text if block.is_error else text), images


def _user_content(blocks: list[TextBlock | ImageBlock]) -> str | list[dict[str, Any]]:
    if all(isinstance(b, TextBlock) for b in blocks):
        return "\n".join(b.text for b in blocks if isinstance(b, TextBlock))
    return [{"type": "text", "text": b.text} if isinstance(b, TextBlock) else _image_part(b) for b in blocks]


def _image_part(block: ImageBlock) -> dict[str, Any]:
    source = block.source
    url = source.url if isinstance(source, URLSource) else f"data:{source.media_type};base64,{source.data}"
    return {"type": "image_url", "image_url": {"url": url}}
