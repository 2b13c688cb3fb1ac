"""Per-request facts (``RequestContext``) and where a request goes (``Plan``).

Plain data shared by the gateway's core (which fills them in) and the request's
``Exchange`` (which reports them: headers, span attributes, the decision record).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry.context import Context

from app.auth import NO_RESERVATION, Principal, Reservation
from app.gateway.catalog import Deployment
from app.schemas.openai import Steering
from router_models.inference.types import RouteDecision


@dataclass(frozen=True)
class NativeMessages:
    """A ``/v1/messages`` (or ``/v1/responses``) request as sent, for deployments that speak that
    API natively (the gateway's ``body`` is its chat translation, which every other deployment gets)."""

    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    """The client's ``anthropic-version``/``anthropic-beta``, forwarded upstream."""
    only_native: str | None = None
    """What in it no translation serves (e.g. "a `document` block"): only native deployments may answer."""
    endpoint: Literal["messages", "responses"] = "messages"
    """The API the body is in: Anthropic's Messages or OpenAI's Responses."""


@dataclass
class RequestContext:
    """Who is asking, what the validated request steers, and its identity on every hop."""

    request_id: str
    principal: Principal
    steering: Steering
    trace_headers: dict[str, str] = field(default_factory=dict)
    lam: float | None = None
    """λ from the ``x-routeiq-lambda`` header; the body's ``routeiq.lambda`` wins."""
    otel: Context | None = None
    """The request span's trace context (parent of the routing span)."""
    plan: Plan | None = None
    """Set once planned, so a request that then fails still has its routing decision logged."""
    reservation: Reservation = NO_RESERVATION
    """What admission held back for it (TPM, budget), replaced when it settles."""
    explore: bool = True
    """False when the request opted out of exploration (``x-routeiq-explore: off`` or the
    body's ``routeiq.explore: false``)."""
    native: NativeMessages | None = None
    """A Messages request naming a concrete model: sent as is to a deployment that speaks it."""
    deployment_hold: tuple[Deployment, Reservation] | None = None
    """The deployment being called and what its own rpm/tpm admission held, replaced when
    that call fails or the request settles."""


@dataclass
class Plan:
    """Where a request goes: the deployment, and the routing decision if any."""

    deployment: Deployment
    decision: RouteDecision | None = None
    fallback_from: str | None = None
    """The model that failed when a fallback answered."""
    query: str = ""
    """The text the router scored (routed requests only)."""
    candidates: tuple[str, ...] = ()
    """The candidates the router was offered (routed requests only), scored or not."""

    @property
    def model(self) -> str:
        return self.deployment.entry.model_name

    @property
    def strategy(self) -> str:
        return self.decision.strategy if self.decision is not None else "direct"

    def headers(self) -> dict[str, str]:
        h = {"x-routeiq-model": self.model}
        if self.fallback_from:
            h["x-routeiq-fallback-from"] = self.fallback_from
        if self.decision is not None:
            h["x-routeiq-strategy"] = self.decision.strategy
            if self.decision.lam is not None:
                h["x-routeiq-lambda"] = f"{self.decision.lam:g}"
            if self.decision.explored:
                h["x-routeiq-explored"] = "true"
        return h

    def span_attributes(self) -> dict[str, str | float | bool]:
        entry = self.deployment.entry
        attrs: dict[str, str | float | bool] = {"routeiq.model": entry.model_name,
                                                "gen_ai.system": entry.litellm_params.model.split("/")[0]}
        if self.fallback_from:
            attrs["routeiq.fallback_from"] = self.fallback_from
        if self.decision is not None and self.decision.propensity is not None:
            attrs["router.propensity"] = self.decision.propensity
            attrs["router.explored"] = self.decision.explored
        return attrs
