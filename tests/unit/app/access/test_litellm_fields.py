"""LiteLLM's key fields, enforced: ``max_parallel_requests``, ``model_*`` limits, soft
budgets, ``/key/regenerate``, the current budget window in ``/key/info``, and the
``x-ratelimit-*`` state of an admission. Real Postgres + Redis (one, a Cluster, a
Sentinel master) and embedded SQLite + the in-process limiter, as ``test_policy``; two
policies stand for two replicas where they share Redis.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from app.access.admin import AccessAdmin
from app.access.limits import Demand
from app.access.policy import VirtualKeyPolicy
from app.errors import AuthenticationError, InvalidRequestError, RateLimitError
from app.providers.base import Usage
from tests.unit.app.access.conftest import SHARED, MakePolicy
from tests.unit.app.access.test_policy import PATIENT, bearer, new_key, wait_for


async def replicas(make_policy: MakePolicy, backend: str) -> tuple[VirtualKeyPolicy, VirtualKeyPolicy]:
    a = await make_policy(**PATIENT)
    return a, (await make_policy(**PATIENT) if backend in SHARED else a)


async def test_max_parallel_requests_is_exact_across_replicas_and_released_on_settle(
        make_policy: MakePolicy, backend: str) -> None:
    a, b = await replicas(make_policy, backend)
    key, _ = await new_key(AccessAdmin(a), max_parallel_requests=2)
    pa, pb = await a.authenticate(bearer(key)), await b.authenticate(bearer(key))
    first = await a.admit(pa, "tiny-model", Demand(1))
    second = await b.admit(pb, "tiny-model", Demand(1))
    with pytest.raises(RateLimitError, match="parallel"):
        await a.admit(pa, "tiny-model", Demand(1))
    a.settle(pa, "tiny-model", None, "req-1", first)  # no answer: the slot is released too

    async def admitted() -> bool:
        try:
            b.settle(pb, "tiny-model", Usage(1, 1, 0.0), "req-3", await b.admit(pb, "tiny-model", Demand(1)))
        except RateLimitError:
            return False
        return True

    await wait_for(admitted)
    b.settle(pb, "tiny-model", Usage(1, 1, 0.0), "req-2", second)


async def test_model_rpm_limit_applies_to_that_model_only(make_policy: MakePolicy, backend: str) -> None:
    a, b = await replicas(make_policy, backend)
    key, _ = await new_key(AccessAdmin(a), rpm_limit=100, model_rpm_limit={"tiny-model": 2})
    pa, pb = await a.authenticate(bearer(key)), await b.authenticate(bearer(key))
    await a.admit(pa, "tiny-model", Demand(1))
    await b.admit(pb, "tiny-model", Demand(1))
    with pytest.raises(RateLimitError, match="model `tiny-model`"):
        await a.admit(pa, "tiny-model", Demand(1))
    for _ in range(3):
        await b.admit(pb, "other-model", Demand(1))


async def test_model_tpm_limit_refuses_what_cannot_fit(policy: VirtualKeyPolicy, admin: AccessAdmin) -> None:
    key, _ = await new_key(admin, model_tpm_limit={"tiny-model": 50})
    p = await policy.authenticate(bearer(key))
    with pytest.raises(InvalidRequestError, match="model `tiny-model`"):
        await policy.admit(p, "tiny-model", Demand(60))
    await policy.admit(p, "other-model", Demand(60))


async def test_model_max_budget_in_litellms_shape(policy: VirtualKeyPolicy, admin: AccessAdmin) -> None:
    key, _ = await new_key(admin, model_max_budget={"tiny-model": {"max_budget": 0.01,
                                                                         "budget_duration": "1d"}})
    p = await policy.authenticate(bearer(key))
    policy.settle(p, "tiny-model", Usage(10, 10, 0.02), "req-a", await policy.admit(p, "tiny-model", Demand(1)))

    async def refused() -> bool:
        try:
            r = await policy.admit(p, "tiny-model", Demand(1))
        except InvalidRequestError as err:
            return "model `tiny-model`" in err.message
        policy.settle(p, "tiny-model", None, "req-b", r)
        return False

    await wait_for(refused)
    await policy.admit(p, "other-model", Demand(1))  # the key's other models are not limited


async def test_soft_budget_alerts_once_per_window_across_replicas(make_policy: MakePolicy, backend: str) -> None:
    a, b = await replicas(make_policy, backend)
    key, key_id = await new_key(AccessAdmin(a), soft_budget=0.05, budget_duration="1d", user_id="u-1")
    pa, pb = await a.authenticate(bearer(key)), await b.authenticate(bearer(key))
    for i in range(6):
        policy, p = (a, pa) if i % 2 else (b, pb)
        policy.settle(p, "tiny-model", Usage(10, 10, 0.02), f"req-{i}", await policy.admit(p, "tiny-model",
                                                                                            Demand(1)))
        await asyncio.gather(*policy._tasks)
    fired = a.alerts.fired + (b.alerts.fired if b is not a else [])
    assert [(f["key_id"], f["user_id"], f["soft_budget"]) for f in fired] == [(key_id, "u-1", 0.05)]
    assert fired[0]["spend"] >= 0.05 and fired[0]["budget_reset_at"] is not None
    await a.admit(pa, "tiny-model", Demand(1))  # a soft budget never refuses


async def test_regenerate_keeps_the_key_and_stops_the_old_secret_everywhere(
        make_policy: MakePolicy, backend: str) -> None:
    a, b = await replicas(make_policy, backend)
    old, key_id = await new_key(AccessAdmin(a), rpm_limit=7, tags=["ci"])
    pb = await b.authenticate(bearer(old))  # replica b caches the old secret's grant
    regenerated = await AccessAdmin(a).regenerate(key_id)
    new = regenerated["key"]
    assert new != old and regenerated["key_id"] == key_id and regenerated["rpm_limit"] == 7
    assert regenerated["tags"] == ["ci"]
    with pytest.raises(AuthenticationError):
        await a.authenticate(bearer(old))
    with pytest.raises(AuthenticationError):
        await b.admit(pb, "tiny-model", Demand(1))  # b's cached grant is stale: re-read, refused
    if b is not a:
        with pytest.raises(AuthenticationError):
            await b.verify(pb)
    assert (await b.authenticate(bearer(new))).key_id == key_id


async def test_key_and_team_info_report_the_current_window(policy: VirtualKeyPolicy, admin: AccessAdmin) -> None:
    team = (await admin.new_team({"team_id": f"t-{uuid.uuid4().hex[:8]}", "budget_duration": "monthly"}))["team_id"]
    key, key_id = await new_key(admin, max_budget=10.0, budget_duration="1d", team_id=team)
    p = await policy.authenticate(bearer(key))
    policy.settle(p, "tiny-model", Usage(1, 1, 0.25), "req-now", await policy.admit(p, "tiny-model", Demand(1)))
    await policy.spend.flush()
    info = (await admin.info(key_id))["info"]
    today = datetime.now(UTC).date()
    assert info["spend"] == pytest.approx(0.25)
    assert info["budget_reset_at"].date() > today and info["budget_reset_at"].hour == 0
    team_info = (await admin.team_info(team))["team_info"]
    assert team_info["spend"] == pytest.approx(0.25)
    assert team_info["budget_reset_at"].day == 1 and team_info["budget_reset_at"].date() > today
    _, lifetime_id = await new_key(admin, max_budget=10.0)
    assert (await admin.info(lifetime_id))["info"]["budget_reset_at"] is None


async def test_an_admission_reports_the_tightest_rate_state(policy: VirtualKeyPolicy, admin: AccessAdmin) -> None:
    key, _ = await new_key(admin, rpm_limit=5, tpm_limit=1000, model_rpm_limit={"tiny-model": 3})
    p = await policy.authenticate(bearer(key))
    r = await policy.admit(p, "tiny-model", Demand(100))
    assert r.rate is not None
    headers = r.rate.headers()
    assert headers["x-ratelimit-limit-requests"] == "3" and headers["x-ratelimit-remaining-requests"] == "2"
    assert headers["x-ratelimit-limit-tokens"] == "1000" and headers["x-ratelimit-remaining-tokens"] == "900"
    assert headers["x-ratelimit-reset-requests"].endswith("s")
    plain, _ = await new_key(admin)
    assert (await policy.admit(await policy.authenticate(bearer(plain)), "tiny-model", Demand(1))).rate is None


async def test_key_list_filters_on_user_and_tags(policy: VirtualKeyPolicy, admin: AccessAdmin) -> None:
    run = uuid.uuid4().hex[:8]  # the Postgres store is shared by every backend's run
    alice, bob, prod, dev, odd = (f"{name}-{run}" for name in ("alice", "bob", "prod", "dev", 'a"b%_\\'))
    _, k1 = await new_key(admin, user_id=alice, tags=[prod, "team-a"])
    _, k2 = await new_key(admin, user_id=alice, tags=[dev])
    _, k3 = await new_key(admin, user_id=bob, tags=[prod])
    _, k4 = await new_key(admin, user_id=bob, tags=[odd])

    async def ids(filters: dict[str, str | None], tags: list[str]) -> set[str]:
        return {k["key_id"] for k in (await admin.list_keys(filters, tags, 1, 100))["keys"]}

    assert await ids({"user_id": alice}, []) == {k1, k2}
    assert await ids({}, [prod]) == {k1, k3}
    assert await ids({"user_id": alice}, [prod, "team-a"]) == {k1}
    assert await ids({}, [prod[:-1]]) == set()
    assert await ids({}, [odd]) == {k4}
    assert await ids({"user_id": bob}, ["%"]) == set()
