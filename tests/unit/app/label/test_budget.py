"""The spending cap: a call starts only when spent + reserved + its estimate fits."""

from __future__ import annotations

import pytest

from app.label.budget import Budget


def test_estimates_come_from_the_largest_cost_seen() -> None:
    budget = Budget(1.0)
    first = budget.reserve("m")
    assert first == 0.0  # nothing seen yet
    budget.settle("m", first, 0.3)
    assert budget.estimate("m") == 0.3 and budget.estimate("judge") == 0.3  # any kind before its own
    r = budget.reserve("judge")
    assert r == 0.3
    budget.settle("judge", r, 0.1)
    assert budget.estimate("judge") == 0.1 and budget.spent == pytest.approx(0.4)


def test_the_first_call_that_would_not_fit_ends_the_run() -> None:
    budget = Budget(1.0)
    budget.settle("m", budget.reserve("m") or 0.0, 0.4)
    a = budget.reserve("m")
    assert a == 0.4 and budget.reserved == 0.4  # in flight: 0.4 spent + 0.4 reserved
    assert budget.reserve("m") is None  # 0.4 + 0.4 + 0.4 > 1.0
    assert budget.exhausted
    budget.settle("m", a, 0.1)
    assert budget.reserve("judge") is None  # exhausted stays exhausted
    assert budget.spent == pytest.approx(0.5) and budget.reserved == 0.0


def test_only_a_measured_cost_prices_later_calls() -> None:
    budget = Budget(1.0)
    budget.settle("m", budget.reserve("m") or 0.0, None)  # failed: nothing known
    assert not budget.priced and budget.spent == 0.0
    budget.settle("m", budget.reserve("m") or 0.0, 0.0)  # a free model is a price too
    assert budget.priced
