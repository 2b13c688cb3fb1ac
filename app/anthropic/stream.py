"""The gateway's OpenAI chat stream as Anthropic's Messages stream, event by event.

``MessageStream.feed`` takes the SSE bytes the exchange relays (LF-framed: the relay
has normalised line ends; an event may be split across reads) and returns the
Anthropic events they complete, so nothing is buffered beyond one partial event:

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

from collections.abc import AsyncIterator
from typing import Any

import orjson

from app.anthropic.errors import error_event
from app.anthropic.response import as_object, stop_reason
from app.providers.estimate import CHARS_PER_TOKEN
from app.providers.sse_events import complete_events, data_of

_DONE = b"[DONE]"


def event(kind: str, payload: dict[str, Any]) -> bytes:
    """One Anthropic SSE event: its ``event:`` name and JSON data (``type`` set to the name)."""
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"


class MessageStream:
    """Translates one stream; feed it the relayed bytes in order, then call ``finish``."""

    def __init__(self, message_id: str, model: str, input_estimate: int) -> None:
        self._id, self._model, self._input_estimate = message_id, model, input_estimate
        self._tail = b""
        self._started = self._ended = False
        self._open: int | None = None
        """Index of the content block started and not yet stopped."""
        self._blocks = 0
        self._tools: dict[int, int] = {}
        """An OpenAI tool call's ``index`` -> its ``tool_use`` block's index."""
        self._finish: Any = None
        self._usage: dict[str, Any] | None = None
        self._chars = 0

    async def translate(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The Anthropic events of ``chunks``, as they complete; closes ``chunks`` however it ends."""
        try:
            async for chunk in chunks:
                if out := self.feed(chunk):
                    yield out
            if out := self.finish():
                yield out
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()

    def feed(self, data: bytes) -> bytes:
        """The Anthropic events that ``data`` completes (none while an event is partial)."""
        ready, self._tail = complete_events(self._tail + data)
        if not ready:
            return b""
        return b"".join(self._event(raw) for raw in ready.split(b"\n\n") if raw.strip())

    def finish(self) -> bytes:
        """What ends the message: the last block's stop, ``message_delta``, ``message_stop``."""
        if self._ended:
            return b""
        self._ended = True
        out = self._start() + self._stop_block()
        usage = self._usage or {}
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        counts = {"input_tokens": prompt if isinstance(prompt, int) else self._input_estimate,
                  "output_tokens": completion if isinstance(completion, int) else -(-self._chars // CHARS_PER_TOKEN)}
        out += event("message_delta", {"delta": {"stop_reason": stop_reason(self._finish), "stop_sequence": None},
                                       "usage": counts})
        return out + event("message_stop", {})

    # one OpenAI event -------------------------------------------------------------------------
    def _event(self, raw: bytes) -> bytes:
        data = data_of(raw)
        if data is None or self._ended:
            return b""
        if data.strip() == _DONE:
            return self.finish()
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return b""  # not a chunk (a comment-like keep-alive): nothing to translate
        if not isinstance(chunk, dict):
            return b""
        if isinstance(chunk.get("error"), dict):
            self._ended = True
            return error_event(chunk["error"])
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        out = self._start()
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                out += self._choice(choice)
        return out

    def _choice(self, choice: dict[str, Any]) -> bytes:
        delta = as_object(choice.get("delta"))
        out = b""
        if isinstance(text := delta.get("content"), str) and text:
            out += self._text(text)
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                out += self._tool(call)
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
            out += self._stop_block()
        return out

    def _text(self, text: str) -> bytes:
        out = b""
        if self._open is None or self._open in self._tools.values():
            out = self._new_block({"type": "text", "text": ""})
        self._chars += len(text)
        return out + event("content_block_delta", {"index": self._open, "delta": {"type": "text_delta", "text": text}})

    def _tool(self, call: dict[str, Any]) -> bytes:
        function = as_object(call.get("function"))
        key = call.get("index", 0) if isinstance(call.get("index", 0), int) else 0
        out = b""
        if key not in self._tools:
            out = self._new_block({"type": "tool_use", "id": str(call.get("id") or f"toolu_{self._id}_{key}"),
                                   "name": str(function.get("name") or ""), "input": {}})
            self._tools[key] = self._blocks - 1
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self._chars += len(arguments)
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
