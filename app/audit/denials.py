"""Refused requests in the audit log, aggregated: one row per key, reason and window.

A refusal (a bad or blocked key, a rate, parallel or budget limit) is part of the audit
trail, but a row per refused request would let a flood of bad requests (the very thing
limits refuse) turn into a flood of inserts. So each replica counts refusals in memory
by (key, reason) and writes one ``access.denied`` row per pair each
``audit.denials_window_s``: actor and target the key id (``anonymous`` when no key was
recognised), outcome the reason code, detail the count, the HTTP status and the window.
At most ``MAX_PAIRS`` pairs per window: the rest are counted under key ``*``. Counts
pending when a replica dies without draining are lost (at most one window's worth).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

MAX_PAIRS = 1000
ANONYMOUS = "anonymous"


class DenialTally:
    """Per-replica counts of refusals since the last ``drain`` (cheap: called per refusal)."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, int]] = Counter()
        self._since = time.time()

    def count(self, key_id: str | None, reason: str, status: int) -> None:
        pair = (key_id or ANONYMOUS, reason, status)
        if pair not in self._counts and len(self._counts) >= MAX_PAIRS:
            pair = ("*", reason, status)
        self._counts[pair] += 1

    def restore(self, rows: list[dict[str, Any]]) -> None:
        """Count drained rows again (the database refused them: they go in the next window)."""
        for row in rows:
            self._counts[(row["actor"], row["outcome"], int(row["detail"]["status"]))] += int(row["detail"]["count"])

    def drain(self) -> list[dict[str, Any]]:
        """The audit rows for the window that ends now (and a new window starts)."""
        counts, self._counts = self._counts, Counter()
        start, self._since = self._since, time.time()
        return [{"actor": key, "action": "access.denied", "target": key, "outcome": reason,
                 "detail": {"count": n, "status": status, "from": start, "to": self._since}}
                for (key, reason, status), n in sorted(counts.items())]

    def __len__(self) -> int:
        return len(self._counts)
