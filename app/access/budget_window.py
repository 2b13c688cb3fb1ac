"""Budget windows with LiteLLM proxy's ``budget_duration`` semantics: calendar-aligned resets.

LiteLLM stores a ``budget_reset_at`` per key and a job resets the spend when it passes;
the next reset comes from ``litellm_core_utils.duration_parser.get_next_standardized_reset_time``
(1.110.2). RouteIQ keeps no reset job: the window that contains *now* is computed from the
duration, the configured timezone and the record's anchor (its creation), and the budget
counter is per window. The rules, as LiteLLM's:

- ``1d`` (``daily``, ``24h``): midnight to midnight; ``7d``/``1w`` (``weekly``): Monday to
  Monday; ``30d``/``1mo`` (``monthly``): the 1st to the 1st;
- other ``Nd``/``Nw``: N days from the midnight of the anchor's day, repeating;
- ``Nh``/``Nm``/``Ns``: windows at multiples of N counted from midnight (LiteLLM counts hours
  from midnight, minutes within the hour, seconds within the minute: the same whenever N
  divides the hour's 60 or the day's 24). Where N does not divide the day, RouteIQ ends
  the day's last window at midnight; LiteLLM's crosses it;
- ``Nmo`` with N > 1: N calendar months from the 1st of the anchor's month (LiteLLM refuses it).

Must not: read a clock itself (``now`` is passed in, so tests are exact).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

ALIASES = {"hourly": "1h", "daily": "24h", "weekly": "7d", "monthly": "1mo"}
_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w|mo)$")
_SUB_DAY_S = {"s": 1, "m": 60, "h": 3600}


def normalise(duration: str) -> tuple[int, str]:
    """``(N, unit)`` of a LiteLLM duration (aliases resolved); ``ValueError`` when it is none."""
    text = ALIASES.get(duration.strip().lower(), duration.strip())
    match = _DURATION.match(text)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"invalid duration {duration!r}: expected e.g. 30s, 10m, 1h, 1d, 7d, 1mo, monthly")
    return int(match.group(1)), match.group(2)


def window(duration: str, anchor: datetime, now: datetime, tz: str = "UTC") -> tuple[datetime, datetime]:
    """``[start, end)`` of the budget window of ``duration`` that contains ``now`` (aware UTC)."""
    n, unit = normalise(duration)
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in _SUB_DAY_S:
        return _sub_day(n * _SUB_DAY_S[unit], local, midnight, zone)
    days = n * 7 if unit == "w" else n if unit == "d" else 0
    if unit == "mo" or days == 30:
        return _months(1 if days == 30 else n, local, anchor.astimezone(zone), zone)
    if days == 1:
        return _utc(midnight, zone), _utc(_days_after(midnight, 1, zone), zone)
    if days == 7:
        monday = midnight - timedelta(days=local.weekday())
        return _utc(monday, zone), _utc(_days_after(monday, 7, zone), zone)
    first = anchor.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    index = max(0, (midnight.date() - first.date()).days // days)
    start = _days_after(first, index * days, zone)
    return _utc(start, zone), _utc(_days_after(start, days, zone), zone)


def _sub_day(length_s: int, local: datetime, midnight: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    into = int((local - midnight).total_seconds())
    start = midnight + timedelta(seconds=into // length_s * length_s)
    end = min(start + timedelta(seconds=length_s), _days_after(midnight, 1, zone))
    return _utc(start, zone), _utc(end, zone)


def _months(n: int, local: datetime, anchor: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    first = (anchor.year * 12 + anchor.month - 1) if n > 1 else 0
    now_m = local.year * 12 + local.month - 1
    start_m = first + max(0, (now_m - first) // n * n) if n > 1 else now_m
    return _utc(_month_start(start_m, zone), zone), _utc(_month_start(start_m + n, zone), zone)


def _month_start(months: int, zone: ZoneInfo) -> datetime:
    return datetime(months // 12, months % 12 + 1, 1, tzinfo=zone)


def _days_after(day: datetime, days: int, zone: ZoneInfo) -> datetime:
    """Midnight ``days`` calendar days later (a DST change makes such a day 23 or 25 hours)."""
    later = day.date() + timedelta(days=days)
    return datetime(later.year, later.month, later.day, tzinfo=zone)


def _utc(local: datetime, zone: ZoneInfo) -> datetime:
    return local.replace(tzinfo=zone).astimezone(UTC)
