"""The routing decision log: one record per routed request, for audits and retraining.

The ingress builds a ``DecisionRecord`` when a routed request ends (success or not)
and hands it to a ``DecisionLog``, which must not block: implementations buffer and
write off the request path. ``NoDecisionLog`` drops records (plain gateways, tests).
``app.access.decision_log.DecisionWriter`` is the implementation the ingress uses: rows
in ``routeiq_decisions``, feedback from ``POST /v1/feedback``, export with
``routeiq decisions export`` (docs/observability.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class DecisionRecord:
    request_id: str
    created_at: float
    """Unix time the request arrived."""
    key_id: str
    router: str
    strategy: str
    lam: float | None
    query: str
    """The query text the router scored (the feature needed for retraining)."""
    candidates: dict[str, float | None] = field(default_factory=dict)
    """Every candidate the router was offered → the score the strategy maximised; ``None``
    for one it could not score (a model its artifact does not know, or a fallback)."""
    chosen: str = ""
    """The model that answered (after fallbacks)."""
    routed_to: str = ""
    """The model the router picked."""
    route_latency_ms: float = 0.0
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    status: int = 0
    fallback: bool = False
    """True when the router failed and the configured fallback model was used."""
    usage_estimated: bool = False
    """The tokens and cost are the gateway's estimate: the upstream reported no usage."""
    propensity: float | None = None
    """Probability with which the routing policy picked ``routed_to`` (off-policy estimates)."""
    explored: bool = False
    """``routed_to`` was drawn by exploration, not the router's best guess."""
    policy: dict[str, float] | None = None
    """The routing policy's probability of each model it could have picked (off-policy support)."""


class DecisionLog(Protocol):
    """Where routed requests are recorded; ``start``/``close`` run with the replica."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def record(self, record: DecisionRecord) -> None:
        """Queue a record; never blocks, never raises."""
        ...

    async def feedback(self, request_id: str, score: float, key_id: str | None) -> bool:
        """Attach a score in [0, 1] to a recorded request; ``key_id`` None: any owner (admin).

        False when there is no such request (or it belongs to another key).
        """
        ...


class NoDecisionLog:
    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def record(self, record: DecisionRecord) -> None:
        return None

    async def feedback(self, request_id: str, score: float, key_id: str | None) -> bool:
        return False
