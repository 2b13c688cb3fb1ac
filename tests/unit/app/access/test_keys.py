"""Key material and grants: pure functions, no servers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.access.keys import Limits, effective_models, hash_key, key_hint, new_key, parse_duration


def test_keys_are_random_and_hashed_with_sha256() -> None:
    a, b = new_key(), new_key()
    assert a != b and a.startswith("sk-") and len(a) > 40
    assert len(hash_key(a)) == 64 and hash_key(a) != a and hash_key(a) == hash_key(a)
    assert key_hint(a) == f"sk-...{a[-4:]}"


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("1h", 3600), ("7d", 604800),
                                               ("1mo", 2592000), (None, None)])
def test_durations(text: str | None, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "0d", "5y", "d", "-1h"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_team_narrows_key_models() -> None:
    assert effective_models(None, None) is None
    assert effective_models(["a", "b"], None) == {"a", "b"}
    assert effective_models(None, ["b"]) == {"b"}
    assert effective_models(["a", "b"], ["b", "c"]) == {"b"}


def test_budget_windows_are_calendar_windows_in_the_configured_timezone() -> None:
    noon = datetime(2026, 3, 11, 12, 30, tzinfo=UTC).timestamp()
    lim = Limits(budget=1.0, budget_duration="1d", budget_anchor=0.0)
    assert lim.window(noon) == (datetime(2026, 3, 11, tzinfo=UTC).timestamp(),
                                datetime(2026, 3, 12, tzinfo=UTC).timestamp())
    berlin = Limits(budget=1.0, budget_duration="1d", budget_tz="Europe/Berlin")
    assert berlin.window(noon) == (datetime(2026, 3, 10, 23, tzinfo=UTC).timestamp(),
                                   datetime(2026, 3, 11, 23, tzinfo=UTC).timestamp())
    assert Limits(budget=1.0).window(noon) is None  # a lifetime budget
