"""Load shedding at the ingress: a bound on requests in flight per replica.

Serve's ``max_queued_requests`` bounds the queues in front of each deployment; this
bound answers *before* any work is queued, in microseconds, with 503 and Retry-After,
so an overloaded gateway says so at once instead of queueing without bound. Requests
already admitted (streams included, until their last byte) always complete.

``enter`` hands out a ``Ticket``; only the ticket releases its slot, and only once,
so no exit path of a request (late failure, client gone, stream cut) can count it
out twice or never. Must not: be touched by routes (the request's ``Exchange`` owns it).
"""

from __future__ import annotations

from collections.abc import Callable

from app.errors import OverloadedError

LoadListener = Callable[[int, int], None]
"""Told ``(inflight, active_streams)`` after every change (the load gauges)."""


class Admission:
    """Counts requests and streams in flight; refuses new requests above ``limit``."""

    def __init__(self, limit: int, retry_after_s: float = 1.0, on_change: LoadListener | None = None) -> None:
        self.limit = limit
        self.inflight = 0
        self.active_streams = 0
        self._retry_after = retry_after_s
        self._on_change = on_change

    def enter(self) -> Ticket:
        """A slot for one request; 503 with Retry-After when the replica is full."""
        if self.inflight >= self.limit:
            raise OverloadedError(
                f"the gateway is at capacity ({self.limit} requests in flight); retry shortly",
                retry_after=self._retry_after,
            )
        self.inflight += 1
        self._changed()
        return Ticket(self)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.inflight, self.active_streams)


class Ticket:
    """One admitted request's slot: counted as a stream once it streams, released once."""

    __slots__ = ("_admission", "_released", "_streaming")

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._streaming = False
        self._released = False

    @property
    def released(self) -> bool:
        return self._released

    def streaming(self) -> None:
        """The request became a stream (counted in ``active_streams`` until released)."""
        if not self._streaming and not self._released:
            self._streaming = True
            self._admission.active_streams += 1
            self._admission._changed()

    def release(self) -> bool:
        """Give the slot back; ``False`` (and nothing changes) when it already was."""
        if self._released:
            return False
        self._released = True
        a = self._admission
        a.inflight -= 1
        if self._streaming:
            a.active_streams -= 1
        a._changed()
        return True
