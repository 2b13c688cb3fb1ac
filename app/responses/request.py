"""A validated Responses request as the OpenAI chat body the gateway serves.

What maps where (docs/coming-from-litellm.md has the table):

- ``instructions`` becomes the first, ``system`` message; ``input`` as a string is one
  ``user`` message (``app.schemas.responses`` makes it one);
- a ``message`` item becomes a message of its role (``developer`` as ``system``, which
  every chat upstream knows); its text parts one string (so upstreams without content
  arrays serve it too), its images ``image_url`` parts;
- ``function_call`` items become the ``tool_calls`` of an assistant message (joined to
  the assistant message just before them, as chat wants one message per turn), a
  ``function_call_output`` a ``tool`` message; images in an output follow the run of
  tool messages in a user message (a ``tool`` message carries text only);
- ``reasoning`` items are dropped; ``tools``/``tool_choice``/``parallel_tool_calls``
  become chat's, ``max_output_tokens`` ``max_tokens``, ``text.format``
  ``response_format``; ``metadata`` and ``store`` are not forwarded.

A stream always asks for the usage chunk: the translated stream ends with the usage in
``response.completed``. Refused with a 400 naming the field: what needs state RouteIQ
does not keep (``previous_response_id``, ``conversation``, ``background``, stored
``prompt`` templates) and images by ``file_id``. Must not: read anything but validated
values, or decide anything but shapes.
"""

from __future__ import annotations

from typing import Any

from app.errors import InvalidRequestError
from app.schemas.responses import (
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionChoice,
    InputImage,
    InputText,
    MessageItem,
    OutputText,
    Refusal,
    ResponsesRequest,
    TextConfig,
)

_STATEFUL = {"previous_response_id": "RouteIQ does not store responses: send the whole conversation as `input`",
             "conversation": "RouteIQ does not store conversations: send the whole conversation as `input`",
             "prompt": "RouteIQ does not store prompt templates: send the prompt as `instructions` and `input`"}


def to_chat(request: ResponsesRequest) -> dict[str, Any]:
    """The OpenAI chat body for ``request``; 400 for what it cannot serve."""
    _refuse_stateful(request)
    messages: list[dict[str, Any]] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    messages += _items(request.input)
    if not messages:
        raise InvalidRequestError("input: nothing to answer (no message in `input` or `instructions`)",
                                  param="input")
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    body |= _tools(request) | _sampling(request)
    return body


def _refuse_stateful(request: ResponsesRequest) -> None:
    for name, why in _STATEFUL.items():
        if getattr(request, name) is not None:
            raise InvalidRequestError(f"{name} is not supported: {why}", param=name)
    if request.background:
        raise InvalidRequestError("background is not supported: RouteIQ answers every response in the request",
                                  param="background")


def _sampling(request: ResponsesRequest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if request.stream:
        out |= {"stream": True, "stream_options": {"include_usage": True}}
    if request.max_output_tokens is not None:
        out["max_tokens"] = request.max_output_tokens
    for name in ("temperature", "top_p", "user"):
        if (value := getattr(request, name)) is not None:
            out[name] = value
    if (response_format := _response_format(request.text)) is not None:
        out["response_format"] = response_format
    if request.routeiq is not None:
        out["routeiq"] = request.routeiq.model_dump(by_alias=True, exclude_none=True)
    return out


def _response_format(text: TextConfig | None) -> dict[str, Any] | None:
    form = text.format if text is not None else None
    if form is None or form.type == "text":
        return None
    if form.type == "json_object":
        return {"type": "json_object"}
    if form.name is None or form.schema_ is None:
        raise InvalidRequestError("text.format: a json_schema format needs `name` and `schema`", param="text.format")
    schema: dict[str, Any] = {"name": form.name, "schema": form.schema_}
    for name in ("description", "strict"):
        if (value := getattr(form, name)) is not None:
            schema[name] = value
    return {"type": "json_schema", "json_schema": schema}


def _tools(request: ResponsesRequest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if request.tools:
        out["tools"] = [{"type": "function", "function": {
            "name": t.name, "parameters": t.parameters if t.parameters is not None else {"type": "object"},
            **({"description": t.description} if t.description else {}),
            **({"strict": t.strict} if t.strict is not None else {})}} for t in request.tools]
        if request.parallel_tool_calls is not None:
            out["parallel_tool_calls"] = request.parallel_tool_calls
    choice = request.tool_choice
    if choice is None or (choice == "none" and not request.tools):
        return out  # nothing to choose from: chat refuses a tool_choice without tools
    if not request.tools:
        raise InvalidRequestError("tool_choice: requires tools", param="tool_choice")
    if isinstance(choice, FunctionChoice):
        if choice.name not in {t.name for t in request.tools}:
            raise InvalidRequestError(f"tool_choice: no tool named `{choice.name[:128]}`", param="tool_choice.name")
        out["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    else:
        out["tool_choice"] = choice
    return out


def _items(items: list[Any]) -> list[dict[str, Any]]:
    """The input items in order, as chat messages."""
    out: list[dict[str, Any]] = []
    pending_images: list[dict[str, Any]] = []
    """Images of the current run of function outputs: they follow it in a user message."""
    for item in items:
        if not isinstance(item, FunctionCallOutputItem) and pending_images:
            out.append({"role": "user", "content": pending_images})
            pending_images = []
        if isinstance(item, MessageItem):
            out.append(_message(item))
        elif isinstance(item, FunctionCallItem):
            _add_call(out, item)
        elif isinstance(item, FunctionCallOutputItem):
            text, images = _output(item)
            out.append({"role": "tool", "tool_call_id": item.call_id, "content": text})
            pending_images += images
    if pending_images:
        out.append({"role": "user", "content": pending_images})
    return out


def _add_call(out: list[dict[str, Any]], item: FunctionCallItem) -> None:
    """Join the call to the assistant message just before it, else start one."""
    call = {"id": item.call_id, "type": "function", "function": {"name": item.name, "arguments": item.arguments}}
    if out and out[-1]["role"] == "assistant":
        out[-1].setdefault("tool_calls", []).append(call)
    else:
        out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _message(item: MessageItem) -> dict[str, Any]:
    role = "system" if item.role == "developer" else item.role
    images = [p for p in item.content if isinstance(p, InputImage)]
    if images and role != "user":
        raise InvalidRequestError(f"input: a {item.role} message may not hold input_image parts", param="input")
    if any(isinstance(p, OutputText | Refusal) for p in item.content) and role != "assistant":
        raise InvalidRequestError(f"input: output_text and refusal parts belong to assistant messages, "
                                  f"not {item.role} ones", param="input")
    if not images:
        return {"role": role, "content": "\n".join(_text(p) for p in item.content)}
    return {"role": role, "content": [_image(p) if isinstance(p, InputImage) else {"type": "text", "text": _text(p)}
                                      for p in item.content]}


def _text(part: InputText | OutputText | Refusal | InputImage) -> str:
    if isinstance(part, Refusal):
        return part.refusal
    return part.text if isinstance(part, InputText | OutputText) else ""


def _output(item: FunctionCallOutputItem) -> tuple[str, list[dict[str, Any]]]:
    text = "\n".join(p.text for p in item.output if isinstance(p, InputText))
    return text, [_image(p) for p in item.output if isinstance(p, InputImage)]


def _image(part: InputImage) -> dict[str, Any]:
    if part.image_url is None:
        raise InvalidRequestError("input_image: only `image_url` images are supported (RouteIQ has no Files API "
                                  "for `file_id`)", param="input")
    image: dict[str, Any] = {"url": part.image_url}
    if part.detail in ("low", "high", "auto"):
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}
