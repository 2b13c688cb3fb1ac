"""A circuit breaker for one dependency (Redis, the database): fail fast while it is down.

Closed (up): calls go through. A connection-level failure opens it: for ``open_s``
every ``allow()`` is False, so callers take their fallback at once instead of each
waiting for a connect timeout against a dead server. Then it is half-open: one caller
at a time is let through as the probe; success closes it, failure opens it again (the
open period doubles, up to ``max_open_s``). ``report()`` is what readiness shows:
status, since when, and the error's type name only (never its message, which may
carry a URL). Single event loop: no locks needed. Must not: import a client library.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("routeiq.breaker")


class Breaker:
    def __init__(self, name: str, open_s: float = 2.0, max_open_s: float = 10.0) -> None:
        self.name = name
        self._open_s, self._max_open_s = open_s, max_open_s
        self._period = open_s
        self._down_since: float | None = None
        """Wall time of the first failure of the current outage; ``None``: up."""
        self._retry_at = 0.0
        self._probing = False
        self._error: str | None = None
        self._last_ok = -1e9
        """Monotonic time of the last successful call (readiness need not ask again soon after)."""

    @property
    def up(self) -> bool:
        return self._down_since is None

    def allow(self) -> bool:
        """May a call go to the dependency now? (While down: True for one probe at a time.)"""
        if self._down_since is None:
            return True
        if self._probing or time.monotonic() < self._retry_at:
            return False
        self._probing = True
        return True

    def seen_up_within(self, seconds: float) -> bool:
        """Up, and a call succeeded less than ``seconds`` ago (no need to probe again)."""
        return self._down_since is None and time.monotonic() - self._last_ok < seconds

    def success(self) -> None:
        self._last_ok = time.monotonic()
        if self._down_since is not None:
            log.warning("%s is back after %.1f s", self.name, time.time() - self._down_since)
        self._down_since, self._error, self._probing = None, None, False
        self._period = self._open_s

    def failure(self, err: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.time()
            log.warning("%s unreachable (%s); failing fast, probing every %g-%g s", self.name,
                        type(err).__name__, self._open_s, self._max_open_s)
        elif self._probing:
            self._period = min(self._period * 2, self._max_open_s)
        self._error = type(err).__name__
        self._retry_at = time.monotonic() + self._period
        self._probing = False

    def release(self) -> None:
        """A probe ended without telling up from down (e.g. cancelled): let another probe."""
        self._probing = False

    def report(self) -> dict[str, Any]:
        if self._down_since is None:
            return {"status": "up"}
        since = datetime.fromtimestamp(self._down_since, UTC).isoformat(timespec="seconds")
        return {"status": "down", "since": since, "error": self._error}
