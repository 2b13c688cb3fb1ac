"""Which deployment of a model group serves a request: LiteLLM's ``routing_strategy``.

Several ``model_list`` entries may share a ``model_name`` (a model group). The strategy
ranks them for one request; the gateway tries them in that order, skipping any at its
``rpm``/``tpm`` limit or cooling down. The strategies are LiteLLM's, by name:

- ``simple-shuffle``: a random order drawn by weight: ``litellm_params.weight`` when set,
  else ``rpm``, else ``tpm``, else equal.
- ``least-busy``: fewest requests in flight on this ingress replica (ties at random).
- ``latency-based-routing``: lowest mean latency of its last ``LATENCY_SAMPLES`` answers
  on this replica (time to the answer, or to a stream's first chunk); one not measured
  yet goes first, so every deployment gets measured.
- ``usage-based-routing-v2``: lowest tokens used in the current minute, read from the
  deployment limiter's counters (Redis: the same across replicas).

``DeploymentStats`` is per replica, as LiteLLM's in-memory router cache is per process.
Must not: call upstreams, or decide anything about limits (``deployment_limits`` does).
"""

from __future__ import annotations

import random
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence

from app.config import RoutingStrategy
from app.gateway.catalog import Deployment

LATENCY_SAMPLES = 10
UsageReader = Callable[[Sequence[Deployment]], Awaitable[list[int]]]
"""Tokens each deployment used in the current minute (``DeploymentLimits.tokens_used``)."""


class DeploymentStats:
    """In-flight counts and recent latencies per deployment (index), on this replica."""

    def __init__(self) -> None:
        self.inflight: dict[int, int] = defaultdict(int)
        self.latencies: dict[int, deque[float]] = defaultdict(lambda: deque(maxlen=LATENCY_SAMPLES))

    def started(self, index: int) -> None:
        self.inflight[index] += 1

    def finished(self, index: int, seconds: float | None) -> None:
        """A call ended; ``seconds`` is its latency when it answered (``None``: it failed)."""
        self.inflight[index] = max(0, self.inflight[index] - 1)
        if seconds is not None:
            self.latencies[index].append(seconds)

    def mean_latency(self, index: int) -> float | None:
        samples = self.latencies.get(index)
        return sum(samples) / len(samples) if samples else None


def shuffle_weight(d: Deployment) -> float:
    """``simple-shuffle``'s weight: an explicit ``weight``, else ``rpm``, else ``tpm``, else 1."""
    params = d.entry.litellm_params
    if "weight" in params.model_fields_set:
        return params.weight
    return float(params.rpm or params.tpm or 1)


def weighted_order(deployments: Sequence[Deployment], rng: random.Random) -> list[Deployment]:
    """A random order where each next one is drawn with probability proportional to its weight."""
    left, order = list(deployments), []
    while left:
        pick = rng.choices(range(len(left)), weights=[shuffle_weight(d) for d in left], k=1)[0]
        order.append(left.pop(pick))
    return order


def _by(deployments: Sequence[Deployment], key: Callable[[Deployment], float], rng: random.Random) -> list[Deployment]:
    """Ascending ``key``, ties in random order."""
    shuffled = list(deployments)
    rng.shuffle(shuffled)
    return sorted(shuffled, key=key)


class DeploymentChooser:
    """Ranks a model group's deployments by the configured strategy."""

    def __init__(self, strategy: RoutingStrategy, stats: DeploymentStats, usage: UsageReader | None = None,
                 rng: random.Random | None = None) -> None:
        self.strategy = strategy
        self.stats = stats
        self._usage = usage
        self._rng = rng or random.Random()

    async def rank(self, deployments: Sequence[Deployment]) -> list[Deployment]:
        if len(deployments) <= 1:
            return list(deployments)
        if self.strategy == "least-busy":
            return _by(deployments, lambda d: self.stats.inflight.get(d.index, 0), self._rng)
        if self.strategy == "latency-based-routing":
            return _by(deployments, lambda d: self.stats.mean_latency(d.index) or 0.0, self._rng)
        if self.strategy == "usage-based-routing-v2" and self._usage is not None:
            used = dict(zip((d.index for d in deployments), await self._usage(deployments), strict=True))
            return _by(deployments, lambda d: used[d.index], self._rng)
        return weighted_order(deployments, self._rng)
