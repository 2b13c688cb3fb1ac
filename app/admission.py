"""Load shedding at the ingress: a bound on requests in flight per replica.

Serve's ``max_queued_requests`` bounds the queues in front of each deployment; this
bound answers *before* any work is queued, in microseconds, with 503 and Retry-After,
so an overloaded gateway says so at once instead of queueing without bound. Requests
already admitted (streams included, until their last byte) always complete.
"""

from __future__ import annotations

from app.errors import OverloadedError


class Admission:
    """Counts requests in flight; refuses new ones above ``limit``."""

    def __init__(self, limit: int, retry_after_s: float = 1.0) -> None:
        self.limit = limit
        self.inflight = 0
        self.active_streams = 0
        self._retry_after = retry_after_s

    def enter(self) -> None:
        if self.inflight >= self.limit:
            raise OverloadedError(
                f"the gateway is at capacity ({self.limit} requests in flight); retry shortly",
                retry_after=self._retry_after,
            )
        self.inflight += 1

    def leave(self) -> None:
        self.inflight -= 1
