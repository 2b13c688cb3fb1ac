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

from app.providers.base import Prices, Usage, reported_tokens
from app.providers.event_relay import EventRelay

PROMPT_PARTS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
_USAGE_EVENTS = ("message_start", "message_delta")


def anthropic_usage(payload: Any, prices: Prices) -> Usage:
    """Usage with cost from an Anthropic ``usage`` object (counts sanitised, cost from our prices)."""
    counts = payload if isinstance(payload, dict) else {}
    fresh, written, read = (reported_tokens(counts.get(k)) for k in PROMPT_PARTS)
    output = reported_tokens(counts.get("output_tokens"))
    cost = prices.cost(fresh, output) + prices.cached_cost(written, read)
    return Usage(fresh + written + read, output, cost)


class AnthropicRelay(EventRelay):
    """Forwards an Anthropic stream as sent; remembers the usage ``message_start``/``message_delta`` report."""

    looked_at = (b"message_start", b"message_delta", b"message_stop")

    def __init__(self, prices: Prices) -> None:
        super().__init__()
        self._prices = prices
        self._counts: dict[str, Any] = {}

    @property
    def usage(self) -> Usage | None:
        """What the stream reported (``None``: no usage event, the gateway charges an estimate)."""
        return anthropic_usage(self._counts, self._prices) if self._counts else None

    def _seen(self, payload: dict[str, Any]) -> None:
        kind = payload.get("type")
        if kind == "message_stop":
            self.done = True
            return
        message = payload.get("message") if kind == "message_start" else payload
        usage = message.get("usage") if kind in _USAGE_EVENTS and isinstance(message, dict) else None
        if isinstance(usage, dict):
            self._counts.update({k: v for k, v in usage.items() if v is not None})
