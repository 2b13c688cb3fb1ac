"""Reading the gateway's own OpenAI chat stream to re-tell it in another API's events.

``/v1/messages`` (``app.anthropic.stream``) and ``/v1/responses`` (``app.responses.stream``)
hand the exchange a chat body and get back its chat stream; each translates it event by
event. What they share lives here: framing the relayed bytes (LF-framed: the relay has
normalised line ends; an event may be split across reads, so only one partial event is
ever buffered), skipping what is not a chunk, spotting the error event a failure after
the start becomes (``app.errors.sse_error_event``), the usage chunk, choice 0's text and
tool-call deltas and its finish reason, and the usage to report at the end (the
upstream's, or the same ~4 characters a token estimate the exchange charges). A subclass
says what each of those becomes in its API (the ``_`` hooks) and how the stream ends.

Must not: block, or hold back an event that is complete.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from app.providers.estimate import CHARS_PER_TOKEN
from app.providers.sse_events import complete_events, data_of

_DONE = b"[DONE]"


def as_object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (an odd upstream is no crash)."""
    return value if isinstance(value, dict) else {}


class ChatStreamTranslator:
    """Translates one chat stream; feed it the relayed bytes in order, then call ``finish``."""

    def __init__(self, input_estimate: int) -> None:
        self._input_estimate = input_estimate
        self._tail = b""
        self._started = self._ended = False
        self._finish: Any = None
        """Choice 0's ``finish_reason``, once it came."""
        self._usage: dict[str, Any] | None = None
        self._chars = 0
        """Characters of answer text and tool arguments so far: the completion estimate."""

    async def translate(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The translated events of ``chunks``, as they complete; closes ``chunks`` however it ends
        (the exchange's relay: closing it is what settles the request)."""
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
        """The translated events that ``data`` completes (none while an event is partial)."""
        ready, self._tail = complete_events(self._tail + data)
        if not ready:
            return b""
        return b"".join(self._event(raw) for raw in ready.split(b"\n\n") if raw.strip())

    def finish(self) -> bytes:
        """What ends the translated stream (nothing once it ended)."""
        raise NotImplementedError

    def _token_counts(self) -> tuple[int, int]:
        """(prompt, completion) tokens: the upstream's usage chunk, else the estimates."""
        usage = self._usage or {}
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        return (prompt if isinstance(prompt, int) else self._input_estimate,
                completion if isinstance(completion, int) else -(-self._chars // CHARS_PER_TOKEN))

    # one chat event ---------------------------------------------------------------------------
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
            return self._fail(chunk["error"])
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
            self._chars += len(text)
            out += self._text(text)
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                out += self._tool_call(call)
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
            out += self._finished()
        return out

    @staticmethod
    def _call_key(call: dict[str, Any]) -> int:
        """A tool call delta's ``index`` (0 when missing or odd): which call its fragments belong to."""
        key = call.get("index", 0)
        return key if isinstance(key, int) else 0

    def _arguments(self, call: dict[str, Any]) -> str:
        """A tool call delta's argument fragment ('' when none), counted for the estimate."""
        arguments = as_object(call.get("function")).get("arguments")
        if not isinstance(arguments, str):
            return ""
        self._chars += len(arguments)
        return arguments

    # what a subclass says in its API -------------------------------------------------------------
    def _start(self) -> bytes:
        """The stream's opening events, once (on the first chunk, or an error before any)."""
        raise NotImplementedError

    def _fail(self, error: dict[str, Any]) -> bytes:
        """The events ending a stream that failed after it started (sets ``_ended``)."""
        raise NotImplementedError

    def _text(self, text: str) -> bytes:
        raise NotImplementedError

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        raise NotImplementedError

    def _finished(self) -> bytes:
        """Choice 0 finished (``_finish`` set): close what is open."""
        raise NotImplementedError
