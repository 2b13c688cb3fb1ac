"""A value the database refuses is a ``StoreDataError`` (400), never an outage: no breaker trip."""

from __future__ import annotations

import pytest

from app.access.dberrors import StoreDataError, StoreUnavailableError, is_data_error
from app.access.keys import now_utc
from app.access.policy import VirtualKeyPolicy


async def test_a_refused_value_is_a_400_and_leaves_the_breaker_closed(policy: VirtualKeyPolicy) -> None:
    refused = ["lone \ud800 surrogate"] + (["nul \x00 byte"] if policy.store.engine.dialect.name != "sqlite" else [])
    for value in refused:
        with pytest.raises(StoreDataError) as err:
            await policy.store.get("keys", value)
        assert err.value.status == 400 and value not in err.value.message  # the value is never echoed
    if policy.store.engine.dialect.name != "sqlite":  # SQLite has no column sizes or int32 columns
        now = now_utc()
        row = {"key_id": "key_overflow", "key_hash": "h" * 64, "key_hint": "sk-...x", "rpm_limit": 2**40,
               "budget_anchor": now, "version": 1, "created_at": now, "updated_at": now}
        with pytest.raises(StoreDataError):
            await policy.store.insert("keys", row)
    assert policy.store.breaker.up  # one bad value must not put the replica in degraded mode
    assert await policy.store.get("keys", "key_missing") is None


def test_outages_are_not_data_errors() -> None:
    assert not is_data_error(ConnectionRefusedError())
    assert not is_data_error(TimeoutError())
    assert is_data_error(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    assert is_data_error(OverflowError("value out of int32 range"))
    assert StoreDataError("x").status == 400 and StoreUnavailableError("x").status == 503
