"""Whether a new config version can change in place, or needs a Serve update of the application.

In place (an ingress replica swaps its snapshot between requests): the model list
(prices, weights, limits, parameters, timeouts, models added or removed within existing
provider groups: each provider call carries its model entry), fallbacks, aliases,
routers' λ, candidates, fallback model, deadline and exploration, and
``general_settings.request_timeout_s``. Everything a deployment was *bound* with
needs the graph rebuilt: provider groups (new, removed, their options), what a provider
replica reads (retries, connect and idle timeouts, private-upstream blocking, logging),
the routers' set, strategies, artifacts and where they score (the scorer's specs), the registry, the stores,
access and decision-log settings, cooldowns, the routing strategy, the sync settings
themselves, environment variables, and rpm/tpm limits where the replicas have no limiter yet.
"""

from __future__ import annotations

from typing import Any

from app.config import GatewayConfig

IN_PLACE_GENERAL = frozenset({"request_timeout_s"})
IN_PLACE_ROUTER_SETTINGS = frozenset({
    "aliases", "fallbacks", "context_window_fallbacks", "content_policy_fallbacks", "model_group_alias",
})
"""``router_settings`` fields the ingress reads per request (cooldown settings are bound into
``Cooldowns`` when a replica starts); ``routers`` is judged per field below."""
GRAPH_ROUTER_FIELDS = ("strategy", "artifact", "scoring")


def graph_changes(old: GatewayConfig, new: GatewayConfig) -> list[str]:
    """Why ``new`` needs a Serve update of the application (empty: it applies in place)."""
    reasons = _group_changes(old, new)
    for field in old.general_settings.model_fields:
        if field not in IN_PLACE_GENERAL and getattr(old.general_settings, field) != getattr(
                new.general_settings, field):
            reasons.append(f"general_settings.{field} changed")
    rs_old, rs_new = old.router_settings, new.router_settings
    for field in rs_old.model_fields:
        if field not in IN_PLACE_ROUTER_SETTINGS | {"routers"} and getattr(rs_old, field) != getattr(rs_new, field):
            reasons.append(f"router_settings.{field} changed")
    reasons += _router_changes(old, new)
    if old.environment_variables != new.environment_variables:
        reasons.append("environment_variables changed")
    if _needs_limits(new) and not _needs_limits(old):
        reasons.append("rpm/tpm limits introduced (the replicas were built without a deployment limiter)")
    return reasons


def _group_changes(old: GatewayConfig, new: GatewayConfig) -> list[str]:
    before = {g.name: g for g in old.groups()}
    after = {g.name: g for g in new.groups()}
    reasons = [f"new provider group {name!r}" for name in after if name not in before]
    reasons += [f"provider group {name!r} removed" for name in before if name not in after]
    reasons += [f"provider group {name!r} options changed" for name in after
                if name in before and after[name] != before[name]]
    return reasons


def _router_changes(old: GatewayConfig, new: GatewayConfig) -> list[str]:
    before = {r.name: r for r in old.router_settings.routers}
    after = {r.name: r for r in new.router_settings.routers}
    if before.keys() != after.keys():
        return ["routers added or removed (the router-scoring deployment's specs)"]
    return [f"router {name!r}: {field} changed" for name, r in after.items() for field in GRAPH_ROUTER_FIELDS
            if getattr(r, field) != getattr(before[name], field)]


def _needs_limits(cfg: GatewayConfig) -> Any:
    return cfg.router_settings.routing_strategy == "usage-based-routing-v2" or any(
        e.litellm_params.rpm or e.litellm_params.tpm for e in cfg.model_list)
