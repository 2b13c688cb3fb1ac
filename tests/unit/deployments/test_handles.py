"""Ray's errors at the handle boundary: a dead replica is a 503 to retry, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from ray.exceptions import ActorDiedError, ActorUnavailableError

from app.errors import OverloadedError, ReplicaUnavailableError, UpstreamError
from deployments.handles import HandleRouter, translated
from router_models.inference.types import RouteDecision, RouteQuery


@pytest.mark.parametrize("err", [ActorUnavailableError("gone", None), ActorDiedError()])
def test_a_dead_replica_is_a_replica_unavailable_503(err: BaseException) -> None:
    with pytest.raises(ReplicaUnavailableError) as info, translated("Provider-small"):
        raise err
    assert info.value.status == 503 and info.value.headers()["retry-after"] == "1"
    assert "Provider-small" in info.value.message


def test_the_replicas_own_errors_and_back_pressure() -> None:
    from ray.serve.exceptions import BackPressureError

    with pytest.raises(UpstreamError), translated("Provider-small"):
        raise UpstreamError("the upstream failed")
    with pytest.raises(OverloadedError) as info, translated("Provider-small"):
        raise BackPressureError(num_queued_requests=10, max_queued_requests=10)
    assert not isinstance(info.value, ReplicaUnavailableError)


class _Remote:
    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes, self.calls = outcomes, 0

    async def remote(self, query: RouteQuery) -> RouteDecision:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class _Handle:
    def __init__(self, outcomes: list[Any]) -> None:
        self.route = _Remote(outcomes)


async def test_the_router_client_asks_another_replica_once() -> None:
    decision = RouteDecision(model="m", strategy="learned")
    handle = _Handle([ActorUnavailableError("gone", None), decision])
    assert await HandleRouter(handle).route(RouteQuery("auto", "q", ())) == decision  # type: ignore[arg-type]
    twice = _Handle([ActorUnavailableError("gone", None), ActorDiedError()])
    with pytest.raises(ReplicaUnavailableError):
        await HandleRouter(twice).route(RouteQuery("auto", "q", ()))  # type: ignore[arg-type]
