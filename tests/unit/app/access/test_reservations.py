"""Budget and TPM are reserved at admission, atomically with RPM, and reconciled at settle.

On both backends (``real``: the Redis script; ``embedded``: the in-process limiter), and
across two policies sharing the store and limiter (two replicas): N concurrent requests
can never overshoot a budget or a TPM limit by N answers.
"""

from __future__ import annotations

import asyncio

import pytest

from app.access.admin import AccessAdmin
from app.access.limits import NO_RESERVATION, Demand, Reservation
from app.access.policy import VirtualKeyPolicy
from app.auth import Principal
from app.errors import InvalidRequestError, RateLimitError
from app.providers.base import Usage
from tests.unit.app.access.conftest import SHARED, MakePolicy


async def keyed(policy: VirtualKeyPolicy, **limits: object) -> Principal:
    created = await AccessAdmin(policy).generate(dict(limits), "master")
    return await policy.authenticate(f"Bearer {created['key']}")


async def outcome(policy: VirtualKeyPolicy, p: Principal, demand: Demand) -> Reservation | Exception:
    try:
        return await policy.admit(p, "tiny-model", demand)
    except (RateLimitError, InvalidRequestError) as err:
        return err


async def settled(policy: VirtualKeyPolicy) -> None:
    """Wait for the background charges ``settle`` queued."""
    while policy._tasks:
        await asyncio.gather(*policy._tasks)


async def test_concurrent_requests_cannot_overshoot_a_budget(make_policy: MakePolicy, backend: str) -> None:
    a = await make_policy()
    b = await make_policy() if backend in SHARED else a  # two replicas on Redis
    p = await keyed(a, max_budget=1.0)
    results = await asyncio.gather(*(outcome(x, p, Demand(10, 0.3)) for x in [a, b] * 5))
    held = [r for r in results if isinstance(r, Reservation)]
    refused = [r for r in results if isinstance(r, InvalidRequestError)]
    assert len(held) == 3 and len(refused) == 7  # 3 x $0.30 fit in $1; a 4th could overshoot
    assert all(r.code == "budget_exceeded" for r in refused)
    for r in held:  # they finish, each having cost $0.05: the budget is reconciled
        a.settle(p, "tiny-model", Usage(5, 5, 0.05), "req", r)
    await settled(a)
    counter = a.scopes(p.grant)[0].spend_key  # type: ignore[arg-type]
    assert await a.limiter.spent(counter) == pytest.approx(0.15)
    assert isinstance(await outcome(b, p, Demand(10, 0.8)), Reservation)  # 0.15 + 0.8 <= 1


async def test_concurrent_requests_cannot_overshoot_tpm(make_policy: MakePolicy, backend: str) -> None:
    a = await make_policy()
    b = await make_policy() if backend in SHARED else a
    p = await keyed(a, tpm_limit=1000)
    results = await asyncio.gather(*(outcome(x, p, Demand(400)) for x in [a, b] * 3))
    assert sum(isinstance(r, Reservation) for r in results) == 2
    limited = [r for r in results if isinstance(r, RateLimitError)]
    assert len(limited) == 4 and all(r.retry_after and 1 <= r.retry_after <= 60 for r in limited)


async def test_reconciling_frees_what_was_not_used(policy: VirtualKeyPolicy) -> None:
    p = await keyed(policy, tpm_limit=1000)
    first = await policy.admit(p, "tiny-model", Demand(900))
    assert isinstance(await outcome(policy, p, Demand(200)), RateLimitError)  # 900 + 200 > 1000
    policy.settle(p, "tiny-model", Usage(50, 50, 0.0), "req-1", first)  # it used 100 of its 900
    await settled(policy)
    second = await policy.admit(p, "tiny-model", Demand(850))  # 100 + 850 <= 1000
    policy.settle(p, "tiny-model", None, "req-2", second)  # no answer: the whole reservation is released
    await settled(policy)
    assert isinstance(await policy.admit(p, "tiny-model", Demand(900)), Reservation)


async def test_a_reservation_that_can_never_fit_is_a_400(policy: VirtualKeyPolicy) -> None:
    p = await keyed(policy, tpm_limit=1000, max_budget=0.01)
    too_many = await outcome(policy, p, Demand(1001))
    assert isinstance(too_many, InvalidRequestError) and too_many.code == "tokens_exceed_limit"
    assert too_many.param == "max_tokens"
    too_costly = await outcome(policy, p, Demand(10, 0.02))
    assert isinstance(too_costly, InvalidRequestError) and too_costly.code == "budget_exceeded"
    assert "lower max_tokens" in too_costly.message


async def test_the_master_key_reserves_nothing(policy: VirtualKeyPolicy) -> None:
    master = await policy.authenticate("Bearer sk-test-master")
    assert await policy.admit(master, "tiny-model", Demand(10**9, 10**6)) == NO_RESERVATION


async def test_without_max_tokens_only_the_prompt_must_fit(policy: VirtualKeyPolicy) -> None:
    """A default answer length is reserved only as far as the limit has room: the request is
    admitted, and the next one finds no room until the first settles."""
    p = await keyed(policy, tpm_limit=100, max_budget=0.001)
    demand = Demand(1034, 0.01, floor_tokens=10, floor_cost=0.00001)
    first = await policy.admit(p, "tiny-model", demand)
    assert first.tokens == 100 and first.cost == pytest.approx(0.001)  # all the room there was
    assert isinstance(await outcome(policy, p, demand), RateLimitError)
    policy.settle(p, "tiny-model", Usage(10, 20, 0.0003), "req", first)
    await settled(policy)
    second = await policy.admit(p, "tiny-model", demand)
    assert second.tokens == 70 and second.cost == pytest.approx(0.0007)
