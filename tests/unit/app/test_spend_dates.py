"""LiteLLM's ``start_date``/``end_date`` on ``/spend/logs``: a day or an ISO time; a bad one is a 400."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.requests import Request

from app.deps import litellm_date
from app.errors import InvalidRequestError


def request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/spend/logs", "query_string": query.encode(),
                    "headers": []})


def test_a_day_is_its_utc_midnight_and_an_end_day_includes_the_whole_day() -> None:
    assert litellm_date(request("start_date=2024-01-31"), "start_date") == datetime(2024, 1, 31, tzinfo=UTC)
    assert litellm_date(request("end_date=2024-01-31"), "end_date", end_of_day=True) == datetime(2024, 2, 1,
                                                                                                 tzinfo=UTC)
    assert litellm_date(request("start_date=2024-01-31T10:00:00%2B02:00"), "start_date") == datetime(
        2024, 1, 31, 8, tzinfo=UTC)
    assert litellm_date(request(""), "start_date") is None


@pytest.mark.parametrize("bad", ["01/31/2024", "2024-13-01", "abc", "9999-12-31", "99999-01-01T00:00:00"])
def test_a_bad_date_is_a_400_naming_it(bad: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        litellm_date(request(f"end_date={bad}"), "end_date", end_of_day=True)
    assert err.value.param == "end_date"
