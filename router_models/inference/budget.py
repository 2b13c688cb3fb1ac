"""The scorer's deadline budget: answer late queries from a cheap prior instead of queueing.

When the scorer is saturated, queries wait in ``@serve.batch``'s queue; once the ingress's
deadline (``timeout_ms``) passes it gives up and routes to the configured fallback model,
a fixed pick that ignores the query and its λ. ``ScoringBudget`` lets the scorer answer
earlier and better: a query whose deadline cannot be met by an encoder pass (the pass's
expected time, learned from the passes so far, plus a reserve for the hop back) is
decided on ``PriorQuality`` (the mean quality this router predicted so far per model)
with the query's own λ and candidates, costs microseconds, and is marked ``degraded``.

Deterministic: the clock is injected, and nothing here measures time itself except
through it; tests drive it without Ray and without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

DEGRADED = "learned:degraded"
"""The strategy label of a decision taken on the prior (decision rows, ``routeiq_routed`` metric)."""


class ScoringBudget:
    """Expected encoder time per query (an exponential average) and who cannot wait for it."""

    def __init__(self, *, reserve_s: float = 0.025, initial_per_query_s: float = 0.01, alpha: float = 0.2,
                 clock: Callable[[], float] = time.time) -> None:
        self.reserve_s, self.alpha, self.clock = reserve_s, alpha, clock
        self.per_query_s = initial_per_query_s

    def observe(self, n: int, seconds: float) -> None:
        """A pass over ``n`` queries took ``seconds``: update the per-query estimate."""
        if n > 0 and seconds >= 0:
            self.per_query_s += self.alpha * (seconds / n - self.per_query_s)

    def late(self, deadlines: Sequence[float | None]) -> set[int]:
        """Indexes of the queries whose deadline (epoch seconds) an encoder pass over all of
        them, plus the reserve, would miss; a query without a deadline is never late."""
        finish = self.clock() + self.per_query_s * len(deadlines) + self.reserve_s
        return {i for i, d in enumerate(deadlines) if d is not None and d < finish}


class PriorQuality:
    """Per-model mean of the quality rows a router predicted: its answer when it has no time.

    Before the first pass every model is equally good (zeros), so ``decide`` picks the
    cheapest candidate: with no information about the query, paying more buys nothing known.
    """

    def __init__(self, n_models: int) -> None:
        self._sum = np.zeros(n_models, np.float64)
        self._n = 0
        self._lock = threading.Lock()

    def add(self, rows: np.ndarray) -> None:
        """Fold predicted rows (n, n_models) into the mean."""
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, self._sum.shape[0])
        with self._lock:
            self._sum += rows.sum(axis=0)
            self._n += rows.shape[0]

    def row(self) -> np.ndarray:
        """The mean predicted quality per model (zeros before any prediction)."""
        with self._lock:
            return (self._sum / max(self._n, 1)).astype(np.float32)
