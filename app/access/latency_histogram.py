"""Fixed latency buckets: counts that replicas (and minutes) add up, read as p50/p95.

The bounds never change at runtime, so a bucket's count means the same thing in every
replica's rows and in every minute: merging is adding. Bounds follow a 1-1.5-2-3-5-7
series per decade from 1 ms to 5 min (6 buckets a decade, each bound at most 5/3 of the
one below), plus one overflow bucket. A percentile read from merged buckets is
interpolated linearly inside its bucket, as Prometheus' ``histogram_quantile`` does: it
is exact to the bucket (within ~50 % of the true value at worst, usually far closer),
which is what a dashboard needs, at a fixed ~35 counters per row.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

BOUNDS_MS: tuple[float, ...] = tuple(
    float(m * d) for d in (1, 10, 100, 1000, 10_000, 100_000) for m in (1, 1.5, 2, 3, 5, 7) if m * d <= 300_000)
"""Upper bounds (inclusive, ms) of the buckets; one more bucket holds everything above."""
N_BUCKETS = len(BOUNDS_MS) + 1
COLUMNS: tuple[str, ...] = tuple(f"b{i:02d}" for i in range(N_BUCKETS))
"""The table's bucket columns, in bound order (``b34``: above the last bound)."""


def bucket_of(ms: float) -> int:
    """The index of the bucket a latency falls in (a negative or NaN latency: the first)."""
    if not ms > 0:
        return 0
    return bisect_left(BOUNDS_MS, ms)


def quantile(counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of merged bucket counts in ms; ``None`` with no count.

    Linear inside the bucket the rank falls in (0 as the first bucket's lower edge); a
    rank in the overflow bucket reads as the last bound (a floor, not an estimate).
    """
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            if i >= len(BOUNDS_MS):
                return BOUNDS_MS[-1]
            lo = BOUNDS_MS[i - 1] if i else 0.0
            return lo + (BOUNDS_MS[i] - lo) * max(0.0, rank - seen) / n
        seen += n
    return BOUNDS_MS[-1]
