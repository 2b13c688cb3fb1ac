"""The gateway's OpenAI chat stream as the Responses API's stream, event by event.

``ResponseStream.feed`` takes the SSE bytes the exchange relays and returns the Responses
events they complete (the framing and the reading of chat chunks are
``app.chat_stream.ChatStreamTranslator``'s):

    response.created, response.in_progress          on the first chunk
    response.output_item.added (message),           text: the message item opens, its
      response.content_part.added,                  ``output_text`` deltas follow
      response.output_text.delta ...
    response.output_item.added (function_call),     each tool call: its arguments
      response.function_call_arguments.delta ...    as they arrive
    ...text.done, content_part.done,                when the answer finishes (or a tool
      function_call_arguments.done, output_item.done  call begins after text)
    response.completed (or .incomplete)             at the end, with the usage

Every event carries a ``sequence_number`` and its ``type`` as the SSE ``event:`` name,
and the item ids and output indexes the ``openai`` SDK's stream accumulator checks.
The usage is the upstream's (the route always asks for the usage chunk) or, when it
sent none, the same ~4 characters a token estimate the exchange charges. An OpenAI
error event (``app.errors.sse_error_event``, a failure after the stream started) becomes
an ``error`` event and ``response.failed``, and ends the stream. There is no ``[DONE]``:
OpenAI's Responses streams end with their lifecycle event.
Must not: block, or emit an item's delta outside its added and done events.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from app.chat_stream import ChatStreamTranslator, as_object
from app.responses.response import call_item, envelope, message_item, status_of, usage_of

_FAILED_CODES = {"rate_limit_error": "rate_limit_exceeded"}
"""An OpenAI error ``type`` -> the ``code`` of ``response.failed``'s error (else ``server_error``)."""


class ResponseStream(ChatStreamTranslator):
    """Translates one stream; feed it the relayed bytes in order, then call ``finish``."""

    def __init__(self, rid: str, model: str, settings: dict[str, Any], input_estimate: int) -> None:
        super().__init__(input_estimate)
        self._rid, self._model, self._settings = rid, model, settings
        self._seq = 0
        self._output: list[dict[str, Any]] = []
        """Every output item so far, at its output index (replaced by its final form when done)."""
        self._message: int | None = None
        """Output index of the message item open for text."""
        self._text_parts: list[str] = []
        self._calls: dict[int, int] = {}
        """A chat tool call's ``index`` -> its open ``function_call`` item's output index."""
        self._call_arguments: dict[int, list[str]] = {}
        self._created_at = int(time.time())
        """One ``created_at`` on every lifecycle event of the response."""

    def finish(self) -> bytes:
        """What ends the response: the open items' done events, then ``response.completed``."""
        if self._ended:
            return b""
        out = self._start() + self._finished()
        self._ended = True
        counts = usage_of(*self._token_counts())
        status = status_of(self._finish)
        response = self._response(status, counts)
        return out + self._emit(f"response.{status}", {"response": response})

    # one chat event's parts -------------------------------------------------------------------
    def _fail(self, error: dict[str, Any]) -> bytes:
        """An ``error`` event, then ``response.failed`` with what was answered so far."""
        out = self._start()
        self._ended = True
        message = str(error.get("message") or "the stream failed")
        out += self._emit("error", {"code": error.get("code") or error.get("type"), "message": message,
                                    "param": error.get("param")})
        response = self._response("failed", None)
        response["error"] = {"code": _FAILED_CODES.get(str(error.get("type")), "server_error"), "message": message}
        return out + self._emit("response.failed", {"response": response})

    # items ------------------------------------------------------------------------------------
    def _text(self, text: str) -> bytes:
        out = b""
        if self._message is None:
            out = self._open_message()
        self._text_parts.append(text)
        item = self._output[self._message]  # type: ignore[index]
        return out + self._emit("response.output_text.delta", {
            "item_id": item["id"], "output_index": self._message, "content_index": 0, "delta": text, "logprobs": []})

    def _open_message(self) -> bytes:
        index = len(self._output)
        item_id = f"msg_{self._rid}" if index == 0 else f"msg_{self._rid}_{index}"
        item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        self._output.append(item)
        self._message, self._text_parts = index, []
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        return (self._emit("response.output_item.added", {"output_index": index, "item": item})
                + self._emit("response.content_part.added", {"item_id": item_id, "output_index": index,
                                                              "content_index": 0, "part": part}))

    def _close_message(self, status: str) -> bytes:
        if self._message is None:
            return b""
        index, self._message = self._message, None
        text, where = "".join(self._text_parts), {"item_id": self._output[index]["id"], "output_index": index}
        item = self._output[index] = message_item(self._output[index]["id"], text, None, status)
        part = item["content"][0]
        return (self._emit("response.output_text.done", {**where, "content_index": 0, "text": text, "logprobs": []})
                + self._emit("response.content_part.done", {**where, "content_index": 0, "part": part})
                + self._emit("response.output_item.done", {"output_index": index, "item": item}))

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        function = as_object(call.get("function"))
        key = self._call_key(call)
        out = b""
        if key not in self._calls:
            out = self._close_message("completed")
            index = len(self._output)
            call_id = str(call.get("id") or f"call_{self._rid}_{key}")
            self._output.append(call_item(f"fc_{self._rid}_{key}", call_id, str(function.get("name") or ""), "",
                                          "in_progress"))
            self._calls[key], self._call_arguments[index] = index, []
            out += self._emit("response.output_item.added", {"output_index": index, "item": self._output[index]})
        index = self._calls[key]
        if arguments := self._arguments(call):
            self._call_arguments[index].append(arguments)
            out += self._emit("response.function_call_arguments.delta", {
                "item_id": self._output[index]["id"], "output_index": index, "delta": arguments})
        return out

    def _close_calls(self) -> bytes:
        out = b""
        for index in sorted(self._calls.values()):
            item = {**self._output[index], "arguments": "".join(self._call_arguments[index]), "status": "completed"}
            self._output[index] = item
            out += self._emit("response.function_call_arguments.done", {
                "item_id": item["id"], "output_index": index, "name": item["name"], "arguments": item["arguments"]})
            out += self._emit("response.output_item.done", {"output_index": index, "item": item})
        self._calls.clear()
        return out

    def _finished(self) -> bytes:
        return self._close_message(status_of(self._finish)) + self._close_calls()

    # the response's lifecycle -----------------------------------------------------------------
    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        response = self._response("in_progress", None)
        return (self._emit("response.created", {"response": response})
                + self._emit("response.in_progress", {"response": response}))

    def _response(self, status: str, usage: dict[str, Any] | None) -> dict[str, Any]:
        return envelope(f"resp_{self._rid}", self._model, self._settings, status, list(self._output), usage,
                        self._finish, self._created_at)

    def _emit(self, kind: str, payload: dict[str, Any]) -> bytes:
        """One SSE event: its ``event:`` name and JSON data (``type`` and ``sequence_number`` set)."""
        body = {"type": kind, "sequence_number": self._seq, **payload}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"
