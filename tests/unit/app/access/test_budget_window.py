"""LiteLLM's ``budget_duration`` windows, checked against litellm's own reset times.

``get_next_standardized_reset_time`` (the litellm wheel RouteIQ pins) is the reference: for
each duration and many instants, the end of RouteIQ's window must be LiteLLM's next reset.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from litellm.litellm_core_utils.duration_parser import get_next_standardized_reset_time

from app.access.budget_window import normalise, window

ANCHOR = datetime(2026, 1, 14, 9, 41, tzinfo=UTC)
INSTANTS = [ANCHOR + timedelta(hours=h, minutes=7 * h % 60, seconds=13 * h % 60) for h in range(0, 24 * 70, 17)]


@pytest.mark.parametrize("duration", ["1d", "24h", "daily", "7d", "1w", "weekly", "30d", "1mo", "monthly",
                                      "1h", "2h", "6h", "15m", "30m", "1m", "30s", "10s"])
@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_window_ends_at_litellms_next_reset(duration: str, tz: str) -> None:
    litellm_name = {"monthly": "1mo", "weekly": "7d", "daily": "24h"}.get(duration, duration)
    for now in INSTANTS:
        start, end = window(duration, ANCHOR, now, tz)
        assert start <= now < end
        assert end == get_next_standardized_reset_time(litellm_name, now, tz), (duration, tz, now)


def test_monthly_windows_are_calendar_months() -> None:
    start, end = window("1mo", ANCHOR, datetime(2026, 2, 28, 23, 59, tzinfo=UTC))
    assert (start, end) == (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    start, end = window("3mo", ANCHOR, datetime(2026, 5, 2, tzinfo=UTC))  # LiteLLM refuses Nmo, N > 1
    assert (start, end) == (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))


def test_other_day_counts_repeat_from_the_anchors_midnight() -> None:
    now = datetime(2026, 1, 20, 5, tzinfo=UTC)
    assert window("3d", ANCHOR, now) == (datetime(2026, 1, 20, tzinfo=UTC), datetime(2026, 1, 23, tzinfo=UTC))
    assert window("2w", ANCHOR, now) == (datetime(2026, 1, 14, tzinfo=UTC), datetime(2026, 1, 28, tzinfo=UTC))


def test_a_sub_day_window_that_does_not_divide_the_day_ends_at_midnight() -> None:
    start, end = window("5h", ANCHOR, datetime(2026, 1, 15, 22, tzinfo=UTC))
    assert (start, end) == (datetime(2026, 1, 15, 20, tzinfo=UTC), datetime(2026, 1, 16, tzinfo=UTC))


def test_a_day_across_a_dst_change_is_the_calendar_day() -> None:
    start, end = window("1d", ANCHOR, datetime(2026, 3, 8, 12, tzinfo=UTC), "America/New_York")
    assert end - start == timedelta(hours=23)


@pytest.mark.parametrize("bad", ["", "0d", "1y", "d", "-1d", "1.5h", "fortnightly"])
def test_invalid_durations_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        normalise(bad)
