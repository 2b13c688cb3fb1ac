"""Unauthenticated traffic cannot reach the database: shape check, bounded caches, a lookup budget."""

from __future__ import annotations

from typing import Any

import pytest

from app.access.admin import AccessAdmin
from app.access.key_cache import KeyCache, is_key_shaped
from app.access.keys import Grant, Limits, new_key
from app.errors import AuthenticationError, OverloadedError
from tests.unit.app.access.conftest import MakePolicy


def grant(i: int) -> Grant:
    return Grant(key_id=f"key_{i}", key=Limits())


def test_shape() -> None:
    assert is_key_shaped(new_key())
    for token in ("sk-short", "sk-" + "a" * 44, "pk-" + "a" * 43, "sk-" + "a" * 42 + "!", ""):
        assert not is_key_shaped(token)


def test_a_flood_evicts_the_oldest_entries_not_the_whole_cache() -> None:
    cache = KeyCache(60, max_known=3, max_unknown=3)
    for i in range(3):
        cache.put(f"h{i}", grant(i))
    for i in range(100):
        cache.put(f"bad{i}", None)  # unknown hashes have their own bounded space
    assert all(cache.fresh(f"h{i}") == (True, grant(i)) for i in range(3))
    cache.put("h3", grant(3))
    assert cache.fresh("h0") == (False, None) and cache.fresh("h1")[0]  # only the oldest went
    assert cache.fresh("bad99") == (True, None) and not cache.fresh("bad0")[0]


def test_the_lookup_budget() -> None:
    cache = KeyCache(60, lookups_per_s=5)
    allowed = sum(cache.may_look_up() for _ in range(100))
    assert 10 <= allowed <= 11 and cache.throttled >= 89  # a burst of two seconds' worth, then nothing


async def test_random_tokens_cost_at_most_the_budget_in_database_lookups(make_policy: MakePolicy,
                                                                         monkeypatch: Any) -> None:
    policy = await make_policy(auth_lookups_per_s=5)
    created = await AccessAdmin(policy).generate({}, "master")
    await policy.authenticate(f"Bearer {created['key']}")  # a real key, cached
    lookups = 0
    real_lookup = policy.store.key_with_team

    async def counting(key_hash: str) -> Any:
        nonlocal lookups
        lookups += 1
        return await real_lookup(key_hash)

    monkeypatch.setattr(policy.store, "key_with_team", counting)
    refused = {401: 0, 503: 0}
    for token in [new_key() for _ in range(300)] + ["sk-not-a-key", "x" * 64]:
        with pytest.raises((AuthenticationError, OverloadedError)) as err:
            await policy.authenticate(f"Bearer {token}")
        refused[err.value.status] += 1
    assert lookups <= 12  # the burst (10) and what refilled meanwhile; not 300
    assert refused[503] >= 280 and refused[401] >= 2 + lookups - 1
    assert (await policy.authenticate(f"Bearer {created['key']}")).key_id == created["key_id"]
