"""What the native Messages and Responses pass-throughs share: reading an upstream's own answer.

Both forward the upstream's bytes unchanged (SSE line ends made LF) and parse only the few
events that carry usage or end the stream (``EventRelay``); both read a JSON answer's
``usage`` with their API's own counting, else charge an estimate (``json_answer``). The
APIs differ only in which events matter and how usage is counted: the subclasses and the
``usage_of`` argument.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from app.providers.base import Prices, ProviderCall, Upstream, Usage
from app.providers.errors import from_status
from app.providers.estimate import estimated_usage
from app.providers.sse_events import LineEndings, complete_events, data_of


def json_answer(raw: bytes, upstream: Upstream, call: ProviderCall,
                usage_of: Callable[[Any, Prices], Usage]) -> tuple[dict[str, Any], Usage]:
    """The answer's JSON object and its usage (an estimate when the upstream reported none);
    a body that is not JSON is the upstream's fault: 502."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise from_status(502, raw, None, upstream.name, call.request_id) from None
    payload = payload if isinstance(payload, dict) else {}
    if isinstance(payload.get("usage"), dict):
        return payload, usage_of(payload["usage"], upstream.prices)
    return payload, estimated_usage(call.body, payload, upstream.prices)  # no usage: an estimate, not nothing


class EventRelay:
    """Feeds raw upstream SSE bytes; returns the bytes to forward; hands the events naming one
    of ``looked_at`` to ``_seen`` (most reads are deltas: a few byte searches, no parsing)."""

    looked_at: tuple[bytes, ...] = ()

    def __init__(self) -> None:
        self._lines = LineEndings()
        self._tail = b""
        self.done = False

    def feed(self, data: bytes) -> bytes:
        if b"\r" in data or self._lines.pending:
            data = self._lines(data)
        ready, self._tail = complete_events(self._tail + data)
        if any(kind in ready for kind in self.looked_at):
            for event in ready.split(b"\n\n"):
                if any(kind in event for kind in self.looked_at):
                    self._parse(event)
        return ready

    def _parse(self, event: bytes) -> None:
        data = data_of(event)
        try:
            payload = orjson.loads(data) if data is not None else None
        except orjson.JSONDecodeError:
            return
        if isinstance(payload, dict):
            self._seen(payload)

    def _seen(self, payload: dict[str, Any]) -> None:
        raise NotImplementedError

    def flush(self) -> bytes:
        """Whatever incomplete event is left at the end (forwarded as is)."""
        tail, self._tail = self._tail, b""
        return tail
