"""The gateway's OpenAI chat stream as Anthropic's Messages stream, event by event.

``MessageStream.feed`` takes the SSE bytes the exchange relays and returns the Anthropic
events they complete (the framing and the reading of chat chunks are
``app.chat_stream.ChatStreamTranslator``'s):

    message_start, ping                      on the first chunk
    content_block_start / _delta / _stop     text (text_delta) and each tool call
                                             (tool_use, input_json_delta), in order
    message_delta (stop_reason, usage)       at [DONE] or the end of the stream, then
    message_stop

``message_start`` carries the prompt estimate as ``input_tokens`` (the upstream's count
arrives only with the last chunk); ``message_delta`` carries the upstream's counts (the
route always asks for the usage chunk), or, when it sent none, the same ~4 characters
a token estimate. An OpenAI error event (``app.errors.sse_error_event``, a failure after
the stream started) becomes Anthropic's ``error`` event and ends the message.
Must not: block, or emit a block delta outside its start and stop.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.anthropic.errors import error_event
from app.anthropic.response import stop_reason
from app.chat_stream import ChatStreamTranslator, as_object


def event(kind: str, payload: dict[str, Any]) -> bytes:
    """One Anthropic SSE event: its ``event:`` name and JSON data (``type`` set to the name)."""
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"


class MessageStream(ChatStreamTranslator):
    """Translates one stream; feed it the relayed bytes in order, then call ``finish``."""

    def __init__(self, message_id: str, model: str, input_estimate: int) -> None:
        super().__init__(input_estimate)
        self._id, self._model = message_id, model
        self._open: int | None = None
        """Index of the content block started and not yet stopped."""
        self._blocks = 0
        self._tools: dict[int, int] = {}
        """An OpenAI tool call's ``index`` -> its ``tool_use`` block's index."""

    def finish(self) -> bytes:
        """What ends the message: the last block's stop, ``message_delta``, ``message_stop``."""
        if self._ended:
            return b""
        self._ended = True
        out = self._start() + self._stop_block()
        prompt, completion = self._token_counts()
        out += event("message_delta", {"delta": {"stop_reason": stop_reason(self._finish), "stop_sequence": None},
                                       "usage": {"input_tokens": prompt, "output_tokens": completion}})
        return out + event("message_stop", {})

    # one OpenAI event's parts -----------------------------------------------------------------
    def _fail(self, error: dict[str, Any]) -> bytes:
        self._ended = True
        return error_event(error)

    def _finished(self) -> bytes:
        return self._stop_block()

    def _text(self, text: str) -> bytes:
        out = b""
        if self._open is None or self._open in self._tools.values():
            out = self._new_block({"type": "text", "text": ""})
        return out + event("content_block_delta", {"index": self._open, "delta": {"type": "text_delta", "text": text}})

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        function = as_object(call.get("function"))
        key = self._call_key(call)
        out = b""
        if key not in self._tools:
            out = self._new_block({"type": "tool_use", "id": str(call.get("id") or f"toolu_{self._id}_{key}"),
                                   "name": str(function.get("name") or ""), "input": {}})
            self._tools[key] = self._blocks - 1
        if arguments := self._arguments(call):
            # Out of order (a parallel call's fragment after the next call began) goes to its own
            # index: the SDK accumulates input_json_delta by index.
            out += event("content_block_delta", {"index": self._tools[key],
                                                 "delta": {"type": "input_json_delta", "partial_json": arguments}})
        return out

    # blocks and the message's start -----------------------------------------------------------
    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        message: dict[str, Any] = {
            "id": self._id, "type": "message", "role": "assistant", "model": self._model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": self._input_estimate, "output_tokens": 0}}
        return event("message_start", {"message": message}) + event("ping", {})

    def _new_block(self, block: dict[str, Any]) -> bytes:
        out = self._stop_block()
        self._open, self._blocks = self._blocks, self._blocks + 1
        return out + event("content_block_start", {"index": self._open, "content_block": block})

    def _stop_block(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open = self._open, None
        return event("content_block_stop", {"index": index})
