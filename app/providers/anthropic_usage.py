"""Anthropic's ``usage`` object as RouteIQ's ``Usage``, and the stream relay that finds it.

Anthropic counts a prompt in three parts: ``input_tokens`` (not cached),
``cache_creation_input_tokens`` (written to the prompt cache) and
``cache_read_input_tokens`` (read from it). Spend records them as one prompt count
(their sum) and one cost, each part at its own price (``Prices.cached_cost``).

A stream reports usage twice: ``message_start`` carries the prompt's counts (and a first
``output_tokens``), ``message_delta`` the final, cumulative ``output_tokens`` (newer API
versions repeat the prompt counts there: the later value wins). ``AnthropicRelay``
forwards the upstream's bytes unchanged (line ends made LF) and parses only those two
events; ``message_stop`` marks a complete stream. Must not: rewrite an event (the client
gets Anthropic's bytes as sent), or parse events that carry no usage.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.providers.base import Prices, Usage, reported_tokens
from app.providers.sse_events import LineEndings, complete_events, data_of

PROMPT_PARTS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
_USAGE_EVENTS = ("message_start", "message_delta")
_LOOKED_AT = (b"message_start", b"message_delta", b"message_stop")


def anthropic_usage(payload: Any, prices: Prices) -> Usage:
    """Usage with cost from an Anthropic ``usage`` object (counts sanitised, cost from our prices)."""
    counts = payload if isinstance(payload, dict) else {}
    fresh, written, read = (reported_tokens(counts.get(k)) for k in PROMPT_PARTS)
    output = reported_tokens(counts.get("output_tokens"))
    cost = prices.cost(fresh, output) + prices.cached_cost(written, read)
    return Usage(fresh + written + read, output, cost)


class AnthropicRelay:
    """Feeds raw upstream SSE bytes; returns the bytes to forward; remembers the usage."""

    def __init__(self, prices: Prices) -> None:
        self._prices = prices
        self._lines = LineEndings()
        self._tail = b""
        self._counts: dict[str, Any] = {}
        self.done = False

    @property
    def usage(self) -> Usage | None:
        """What the stream reported (``None``: no usage event, the gateway charges an estimate)."""
        return anthropic_usage(self._counts, self._prices) if self._counts else None

    def feed(self, data: bytes) -> bytes:
        if b"\r" in data or self._lines.pending:
            data = self._lines(data)
        ready, self._tail = complete_events(self._tail + data)
        if any(kind in ready for kind in _LOOKED_AT):  # most reads are deltas: a few byte searches
            for event in ready.split(b"\n\n"):
                if any(kind in event for kind in _LOOKED_AT):
                    self._look(event)
        return ready

    def _look(self, event: bytes) -> None:
        data = data_of(event)
        try:
            payload = orjson.loads(data) if data is not None else None
        except orjson.JSONDecodeError:
            return
        if not isinstance(payload, dict):
            return
        kind = payload.get("type")
        if kind == "message_stop":
            self.done = True
            return
        message = payload.get("message") if kind == "message_start" else payload
        usage = message.get("usage") if kind in _USAGE_EVENTS and isinstance(message, dict) else None
        if isinstance(usage, dict):
            self._counts.update({k: v for k, v in usage.items() if v is not None})

    def flush(self) -> bytes:
        """Whatever incomplete event is left at the end (forwarded as is)."""
        tail, self._tail = self._tail, b""
        return tail
