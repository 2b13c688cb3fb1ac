"""Exploration with logged propensities: how a router learns models it cannot yet score.

A learned router only ever serves its best guess, so the decision log never holds an
answer from a model it undervalues or does not know, and retraining cannot fix that. With
``router_settings.routers[].exploration.rate`` = ε, a routed request is, with probability
ε, served by a candidate drawn uniformly from an eligible pool instead (epsilon-greedy:
the simplest policy whose propensities are exact and cheap to compute, which is what
unbiased off-policy estimates need; see docs/routing.md).

The pool never leaves what the request may use: the candidates the ingress already
narrowed (the key's allowlist, context window, capabilities, cooldowns), further limited
to ``exploration.models`` and, for candidates the router scored, to those within
``max_utility_loss`` of the best utility (λ enters there). A key stops exploring for the
rest of the UTC day once its explored answers cost ``max_cost_per_key_per_day``. A key
whose metadata has ``routeiq_explore: false``, or a request with
``x-routeiq-explore: off``, is never explored.

Every routed decision gets its ``propensity``: the probability with which the policy in
force for *this* request picked the model it routed to, ``(1-ε)·[greedy] + ε·[in pool]/|pool|``.
Whether the cost cap is reached is known before the draw (a per-key state, cached for
``CAP_CACHE_S``), so the logged propensity is the one of the policy actually applied.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from app.config import ExplorationSettings
from app.errors import InvalidRequestError
from router_models.inference.types import Candidate, RouteDecision

log = logging.getLogger("routeiq.exploration")

CAP_CACHE_S = 5.0
"""How long a key's "under its exploration cap" state is reused before asking again."""
DAY_TTL_S = 2 * 86400


HEADER = "x-routeiq-explore"
_OFF, _ON = frozenset({"off", "false", "0", "no"}), frozenset({"on", "true", "1", "yes"})


def explore_header(headers: Mapping[str, str]) -> bool:
    """``x-routeiq-explore``: ``off`` opts the request out; 400 on a value that means neither."""
    raw = headers.get(HEADER)
    if raw is None or raw.strip().lower() in _ON:
        return True
    if raw.strip().lower() in _OFF:
        return False
    raise InvalidRequestError(f"{HEADER} must be on or off", param=HEADER)


def utc_day(now: float | None = None) -> str:
    return time.strftime("%Y%m%d", time.gmtime(time.time() if now is None else now))


class ExploreBudget(Protocol):
    """What keys spent on explored answers today."""

    async def spent(self, key_id: str, day: str) -> float: ...

    def charge(self, key_id: str, day: str, cost: float) -> None:
        """Add ``cost``; never blocks, never raises (called when a request settles)."""
        ...


class LocalExploreBudget:
    """Per replica (no Redis): the cap is then per replica, as docs/routing.md says."""

    def __init__(self) -> None:
        self._spent: dict[tuple[str, str], float] = {}

    async def spent(self, key_id: str, day: str) -> float:
        return self._spent.get((key_id, day), 0.0)

    def charge(self, key_id: str, day: str, cost: float) -> None:
        self._spent[(key_id, day)] = self._spent.get((key_id, day), 0.0) + cost


class RedisExploreBudget:
    """Shared by every ingress replica: one float per key and day (``INCRBYFLOAT``)."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self._redis, self._prefix = redis, prefix
        self._tasks: set[asyncio.Task[None]] = set()

    def _key(self, key_id: str, day: str) -> str:
        return f"{self._prefix}:explore:{{{key_id}}}:{day}"

    async def spent(self, key_id: str, day: str) -> float:
        raw = await self._redis.get(self._key(key_id, day))
        return float(raw) if raw is not None else 0.0

    def charge(self, key_id: str, day: str, cost: float) -> None:
        task = asyncio.get_running_loop().create_task(self._charge(self._key(key_id, day), cost))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _charge(self, key: str, cost: float) -> None:
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.incrbyfloat(key, cost)
            pipe.expire(key, DAY_TTL_S)
            await pipe.execute()
        except Exception as err:  # noqa: BLE001 - an uncounted explored answer only loosens the cap
            log.warning("exploration spend of %s not counted: %s", key, type(err).__name__)


def eligible(settings: ExplorationSettings, decision: RouteDecision,
             candidates: tuple[Candidate, ...]) -> tuple[Candidate, ...]:
    """The candidates exploration may serve for this request."""
    pool = [c for c in candidates if not settings.models or c.name in settings.models]
    if settings.max_utility_loss is not None and decision.scores:
        best = max(decision.scores.values())
        pool = [c for c in pool if c.name not in decision.scores
                or decision.scores[c.name] >= best - settings.max_utility_loss]
    return tuple(pool)


def distribution(rate: float, greedy: str, pool: tuple[Candidate, ...]) -> dict[str, float]:
    """The policy's probability of each model: ``(1-rate)`` on the greedy pick, ``rate``
    spread evenly over the pool (which may hold the greedy pick too)."""
    out = {greedy: 1.0 - rate}
    for c in pool:
        out[c.name] = out.get(c.name, 0.0) + rate / len(pool)
    return out


def base_policy(decision: RouteDecision) -> dict[str, float] | None:
    """The whole distribution of a decision nothing explored: a shuffle's weights, else the pick
    alone (``None`` when nothing was picked: the router failed and the ingress falls back)."""
    if not decision.model:
        return None
    if decision.strategy == "weighted-shuffle" and decision.scores:
        return dict(decision.scores)
    return {decision.model: 1.0}


class Explorer:
    """Applies each router's exploration to its decisions; one per ingress replica."""

    def __init__(self, routers: Mapping[str, ExplorationSettings], budget: ExploreBudget,
                 rng: random.Random | None = None) -> None:
        self._routers = {name: s for name, s in routers.items() if s.rate > 0}
        self._budget, self._rng = budget, rng or random.Random()
        self._under_cap: dict[str, tuple[float, bool]] = {}

    def configure(self, routers: Mapping[str, ExplorationSettings]) -> None:
        """New per-router settings (a config applied in place); spent budgets stay counted."""
        self._routers = {name: s for name, s in routers.items() if s.rate > 0}

    async def choose(self, router: str, decision: RouteDecision, candidates: tuple[Candidate, ...], *,
                     key_id: str, opted_out: bool) -> RouteDecision:
        """``decision``, possibly redirected to an explored model, with its propensity."""
        settings = self._routers.get(router)
        policy = base_policy(decision)
        sure = replace(decision, propensity=policy.get(decision.model, 1.0) if policy else 1.0, policy=policy)
        if settings is None or opted_out or decision.fallback or decision.error:
            return sure
        pool = eligible(settings, decision, candidates)
        if not pool or not await self._may_spend(settings, key_id):
            return sure
        rate = settings.rate
        explore = self._rng.random() < rate
        served = self._rng.choice(pool).name if explore else decision.model
        policy = distribution(rate, decision.model, pool)
        p = policy[served]
        if not explore:
            return replace(decision, propensity=p, policy=policy)
        return replace(decision, model=served, propensity=p, policy=policy, explored=True,
                       reason=f"explored (rate {rate:g}) instead of {decision.model}")

    def charge(self, key_id: str, decision: RouteDecision, cost: float) -> None:
        """Count an explored answer's cost against its key's daily cap."""
        if decision.explored and cost > 0:
            self._budget.charge(key_id, utc_day(), cost)
            self._under_cap.pop(key_id, None)

    async def _may_spend(self, settings: ExplorationSettings, key_id: str) -> bool:
        cap = settings.max_cost_per_key_per_day
        if cap is None:
            return True
        now = time.monotonic()
        cached = self._under_cap.get(key_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            under = await self._budget.spent(key_id, utc_day()) < cap
        except Exception as err:  # noqa: BLE001 - the cap cannot be checked: do not explore
            log.warning("exploration cap of key %s unreadable (%s): not exploring", key_id, type(err).__name__)
            under = False
        self._under_cap[key_id] = (now + CAP_CACHE_S, under)
        return under
