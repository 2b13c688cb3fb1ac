"""The per-chunk path of streaming, kept to bytes operations.

Upstream SSE bytes are forwarded as they arrive (line ends made LF); only events that
carry a ``usage`` object are parsed (to account tokens and cost, and to add ``usage.cost``). The usage
chunk RouteIQ always asks for is dropped again when the client did not ask for it.
``coalesce`` merges whatever the consumer has not yet taken into one item, so a fast
upstream costs one DeploymentHandle item per burst rather than one per token.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson

from app.providers.base import Prices, StreamEnd, StreamItem, Usage, usage_from
from app.providers.sse_events import USAGE_OBJECT, LineEndings, complete_events, data_of, with_data

_DONE = b"[DONE]"
_USAGE = b'"usage"'
_NO_USAGE = b'"usage":null'
"""What OpenAI writes on every chunk of a stream that asked for usage: counted, not searched."""


class SSERelay:
    """Feeds raw upstream bytes; returns the bytes to forward; remembers usage.

    Events are framed as the SSE spec says (``app.providers.sse_events``). A read is
    forwarded whole, without splitting it into events, unless it holds a ``usage`` key
    followed by an object, or ``[DONE]``: only then are its events looked into, and only
    an event whose data is a JSON object with a ``usage`` object is parsed and rewritten.
    ``usage`` stays ``None`` when the upstream reported none (the gateway then charges an
    estimate).
    """

    def __init__(self, prices: Prices, include_usage: bool) -> None:
        self._prices = prices
        self._include_usage = include_usage
        self._lines = LineEndings()
        self._tail = b""
        self.usage: Usage | None = None
        self.done = False

    def feed(self, data: bytes) -> bytes:
        if b"\r" in data or self._lines.pending:
            data = self._lines(data)
        ready, self._tail = complete_events(self._tail + data)
        if not ready:
            return b""
        if _DONE not in ready and (_USAGE not in ready or not _may_hold_usage(ready)):
            return ready  # the common read: two byte searches (and one for CR, above)
        return b"".join(self._look(event) for event in ready.split(b"\n\n") if event)

    def _look(self, event: bytes) -> bytes:
        """One complete event (without its blank line), as it is to be forwarded."""
        if _DONE not in event and not _may_hold_usage(event):
            return event + b"\n\n"  # most events of a read that holds the usage or [DONE]
        data = data_of(event)
        if data is None:
            return event + b"\n\n"
        if data.strip() == _DONE:
            self.done = True
            return event + b"\n\n"
        payload = _usage_payload(data)
        if payload is None:
            return event + b"\n\n"
        self.usage = usage_from(payload["usage"], self._prices)
        if not self._include_usage and not payload.get("choices"):
            return b""
        payload["usage"]["cost"] = self.usage.cost
        return with_data(event, orjson.dumps(payload))

    def flush(self) -> bytes:
        """Whatever incomplete event is left at the end (forwarded as is)."""
        tail, self._tail = self._tail, b""
        return tail


def _may_hold_usage(raw: bytes) -> bool:
    """Whether raw event bytes may hold a ``usage`` object: two byte counts first (no
    ``"usage"`` at all, or only ``"usage":null``), then ``USAGE_OBJECT``."""
    seen = raw.count(_USAGE)
    return seen > 0 and seen > raw.count(_NO_USAGE) and USAGE_OBJECT.search(raw) is not None


def _usage_payload(data: bytes) -> dict[str, Any] | None:
    """The event's JSON object if it carries a ``usage`` object, else ``None``."""
    if USAGE_OBJECT.search(data) is None:
        return None
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("usage"), dict):
        return None
    return payload


async def coalesce(source: AsyncIterator[StreamItem]) -> AsyncIterator[StreamItem]:
    """Yield the source's bytes merged into as few items as the consumer allows."""
    buffer: list[bytes] = []
    ready = asyncio.Event()
    finished: list[StreamItem | BaseException] = []

    async def pump() -> None:
        try:
            async for item in source:
                if isinstance(item, bytes):
                    buffer.append(item)
                else:
                    finished.append(item)
                ready.set()
        except BaseException as err:  # noqa: BLE001  (re-raised in the consumer)
            finished.append(err)
        finally:
            if not finished:
                finished.append(StreamEnd(None))
            ready.set()

    task = asyncio.create_task(pump())
    try:
        while True:
            if not buffer and not finished:
                ready.clear()
                await ready.wait()
            if buffer:
                chunk = b"".join(buffer)
                buffer.clear()
                yield chunk
                continue
            last = finished[0]
            if isinstance(last, BaseException):
                raise last
            yield last
            return
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
