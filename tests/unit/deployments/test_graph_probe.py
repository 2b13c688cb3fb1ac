"""Readiness waits for the whole graph: GraphProbe with handles that answer, or never do."""

from __future__ import annotations

import asyncio
from typing import Any

from deployments.ingress import GraphProbe


class FakeMethod:
    def __init__(self, answers: bool) -> None:
        self.answers = answers
        self.calls = 0

    def remote(self) -> Any:
        self.calls += 1
        return asyncio.sleep(0, "ok") if self.answers else asyncio.sleep(3600)


class FakeHandle:
    def __init__(self, answers: bool = True) -> None:
        self.ping = FakeMethod(answers)


async def test_a_deployment_that_does_not_answer_is_unavailable() -> None:
    router, small = FakeHandle(answers=False), FakeHandle()
    probe = GraphProbe(router, {"small": small}, timeout_s=0.05)
    assert await probe.states() == {"provider:small": "up", "router-scoring": "unavailable"}
    router.ping.answers = True  # the scorer finished loading: the next probe sees it at once
    assert await probe.states() == {"provider:small": "up", "router-scoring": "up"}


async def test_healthy_results_are_cached() -> None:
    small = FakeHandle()
    probe = GraphProbe(None, {"small": small}, ttl_s=60)
    for _ in range(5):
        assert await probe.states() == {"provider:small": "up"}
    assert small.ping.calls == 1
