"""LiteLLM's routing strategies among the deployments of one model group."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from app.config import ModelEntry
from app.gateway.catalog import Deployment
from app.gateway.deployment_choice import DeploymentChooser, DeploymentStats, shuffle_weight


def dep(index: int, **params: object) -> Deployment:
    entry = ModelEntry.model_validate({"model_name": "m", "litellm_params": {"model": f"openai/m{index}", **params}})
    return Deployment(index, entry)


async def firsts(chooser: DeploymentChooser, deps: list[Deployment], n: int = 2000) -> Counter[int]:
    return Counter([(await chooser.rank(deps))[0].index for _ in range(n)])


def test_shuffle_weight_is_weight_else_rpm_else_tpm_else_one() -> None:
    assert [shuffle_weight(d) for d in (dep(0, weight=2, rpm=50), dep(1, rpm=50, tpm=9), dep(2, tpm=9), dep(3))] == [
        2, 50, 9, 1]


async def test_simple_shuffle_draws_by_rpm() -> None:
    chooser = DeploymentChooser("simple-shuffle", DeploymentStats(), rng=random.Random(7))
    counts = await firsts(chooser, [dep(0, rpm=900), dep(1, rpm=100)])
    assert 0.85 < counts[0] / 2000 < 0.95
    ranked = await chooser.rank([dep(0), dep(1), dep(2)])
    assert sorted(d.index for d in ranked) == [0, 1, 2]  # a full order: the rest are the next to try


async def test_least_busy_picks_fewest_in_flight() -> None:
    stats = DeploymentStats()
    for _ in range(3):
        stats.started(0)
    stats.started(1)
    chooser = DeploymentChooser("least-busy", stats)
    assert [d.index for d in await chooser.rank([dep(0), dep(1), dep(2)])] == [2, 1, 0]
    stats.finished(0, 0.1)
    stats.finished(0, None)
    stats.finished(0, None)
    stats.finished(0, None)  # never below zero
    assert stats.inflight[0] == 0


async def test_latency_based_prefers_the_unmeasured_then_the_fastest() -> None:
    stats = DeploymentStats()
    stats.finished(0, 2.0)
    stats.finished(1, 0.5)
    stats.finished(1, 0.7)
    chooser = DeploymentChooser("latency-based-routing", stats)
    assert [d.index for d in await chooser.rank([dep(0), dep(1), dep(2)])] == [2, 1, 0]
    stats.finished(2, 9.0)
    assert [d.index for d in await chooser.rank([dep(0), dep(1), dep(2)])] == [1, 0, 2]
    stats.finished(0, None)  # a failure is not a latency sample
    assert stats.mean_latency(0) == 2.0


async def test_usage_based_v2_picks_the_least_used_this_minute() -> None:
    used = {0: 5000, 1: 10, 2: 700}

    async def usage(deps: Sequence[Deployment]) -> list[int]:
        return [used[d.index] for d in deps]

    chooser = DeploymentChooser("usage-based-routing-v2", DeploymentStats(), usage)
    assert [d.index for d in await chooser.rank([dep(0), dep(1), dep(2)])] == [1, 2, 0]


async def test_one_deployment_needs_no_strategy() -> None:
    async def usage(deps: Sequence[Deployment]) -> list[int]:
        raise AssertionError("not read for one deployment")

    chooser = DeploymentChooser("usage-based-routing-v2", DeploymentStats(), usage)
    assert [d.index for d in await chooser.rank([dep(4)])] == [4]
