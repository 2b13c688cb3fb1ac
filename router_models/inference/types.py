"""Plain data passed between the ingress and the router-scoring deployment.

Kept free of heavy imports: ``app/`` imports these types, and crossing a Ray
DeploymentHandle pickles them, so they stay small frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RouterSpec:
    """One configured router, as ``deployments.graph`` binds it into the router-scoring node."""

    name: str
    strategy: str
    """A key of ``router_models.inference.registry.STRATEGIES``."""
    artifact: str | None = None
    """Artifact directory of a learned router (absolute once the graph resolved it)."""
    lam: float | None = None
    """The router's λ when the query brings none; ``None``: the artifact's default."""
    candidates: tuple[tuple[str, str | None], ...] = ()
    """The configured candidates as ``(model_name, router_profile)``: what the replica
    checks its artifact against at load, to name the models it cannot score."""


@dataclass(frozen=True)
class Candidate:
    """A model the router may pick, as the gateway config describes it."""

    name: str
    """Gateway ``model_name``."""
    price: float
    """Mean of input and output price, in $ per 1M tokens (the data README's protocol)."""
    context_window: int = 0
    """Max input tokens; 0 means unknown (never filtered out on length)."""
    capabilities: frozenset[str] = frozenset()
    weight: float = 1.0
    """Relative weight for the weighted-shuffle strategy."""
    profile: str | None = None
    """A model the learned router's artifact knows, whose predicted quality stands in for
    this one's until the router is trained on it (``model_info.router_profile``)."""


@dataclass(frozen=True)
class RouteQuery:
    """What the router needs to know about one request."""

    router: str
    """Name of the router (``auto`` or a configured alias)."""
    text: str
    """The query text the learned router embeds (last user turn, truncated by the embedder)."""
    candidates: tuple[Candidate, ...]
    """Already narrowed to what the caller may use and what fits the request."""
    lam: float | None = None
    """Willingness to pay: utility = quality - lam * price. ``None``: the router's default."""
    request_id: str = ""
    trace: dict[str, str] = field(default_factory=dict)
    """W3C trace headers of the routing span, so the scorer's span joins the request's trace."""
    deadline: float | None = None
    """Epoch seconds by which the ingress needs the decision (its ``timeout_ms``); a scorer
    that cannot embed the query by then decides on its prior (``budget``). ``None``: no deadline."""


@dataclass(frozen=True)
class RouteDecision:
    """The router's answer: which model, by which strategy, and why."""

    model: str
    strategy: str
    scores: dict[str, float] = field(default_factory=dict)
    """Per-candidate score (the utility the strategy maximised, or its weight)."""
    reason: str = ""
    lam: float | None = None
    latency_ms: float = 0.0
    fallback: bool = False
    """True when the router could not decide and the configured default model was used."""
    propensity: float | None = None
    """The probability with which the routing policy picked ``model`` for this query, set
    by the ingress (``app.gateway.exploration``): 1 for a greedy pick without exploration,
    less when it explores. Logged, so the decision log supports off-policy estimates."""
    explored: bool = False
    """``model`` was drawn by exploration rather than being the router's best guess."""
    policy: dict[str, float] | None = None
    """The routing policy's whole distribution for this query (model -> probability; absent
    models had 0), set with ``propensity``. Logged, so the gate knows which actions the log
    could have taken: its support (``router_models.evaluation.offpolicy``)."""
    error: str | None = None
    """The router could not decide this query; the ingress falls back. One line, the cause.

    Set per query, so one bad query of a ``@serve.batch`` (which gathers the queries of
    different tenants) never fails the others; ``model`` is then empty."""
