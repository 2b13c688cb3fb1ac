"""The spending cap of a labelling run.

A call's cost is known only once the gateway answers, so each call first *reserves* an
estimate: the largest cost seen so far for that kind of call (the model replayed, or the
judge), or, before any, the largest cost seen for any call. A call is started only if
what was spent, plus what calls in flight reserved, plus its estimate stays within the
cap; the first refusal ends the run (no new call starts; calls in flight finish). The
labeller makes calls one at a time until the first has settled (``priced``), so the
total can pass the cap only by the first call's cost (when the cap is below it) and by
the amount a call costs more than its estimate (a longer answer than any before of its
kind, or the first judge call when it costs more than every replay before it).
"""

from __future__ import annotations


class Budget:
    """Dollars spent and reserved against ``cap`` (single event loop: no locking)."""

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self.spent = 0.0
        self.reserved = 0.0
        self.exhausted = False
        self._largest: dict[str, float] = {}

    @property
    def priced(self) -> bool:
        """Whether any call has settled with a cost (before that, every estimate is 0)."""
        return bool(self._largest)

    def estimate(self, kind: str) -> float:
        return self._largest.get(kind, max(self._largest.values(), default=0.0))

    def reserve(self, kind: str) -> float | None:
        """The amount reserved for one call of ``kind``; None (and exhausted) when it does not fit."""
        if self.exhausted:
            return None
        amount = self.estimate(kind)
        if self.spent + self.reserved + amount > self.cap:
            self.exhausted = True
            return None
        self.reserved += amount
        return amount

    def settle(self, kind: str, reserved: float, cost: float | None) -> None:
        """Replace a reservation by the call's real cost (None: it failed, costing nothing known)."""
        self.reserved -= reserved
        if cost is not None:
            self.spent += cost
            self._largest[kind] = max(self._largest.get(kind, 0.0), cost)
