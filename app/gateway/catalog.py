"""What a ``model`` value names: a concrete model (one or more deployments) or a router.

Built once from the config. Also narrows a router's candidates to those that fit a
request: the caller's allowlist, the context window and the capabilities it needs.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from app.config import GatewayConfig, ModelEntry, RouterConfig
from app.errors import InvalidRequestError, NotFoundError
from app.providers.estimate import estimate_tokens
from router_models.inference.types import Candidate


@dataclass(frozen=True)
class Deployment:
    index: int
    entry: ModelEntry


@dataclass(frozen=True)
class RouterTarget:
    router: RouterConfig
    lam: float | None
    candidates: tuple[Candidate, ...]


def _price_per_million(entry: ModelEntry) -> float:
    info = entry.model_info
    return ((info.input_cost_per_token or 0.0) + (info.output_cost_per_token or 0.0)) / 2 * 1e6


def _candidate(entry: ModelEntry) -> Candidate:
    return Candidate(
        name=entry.model_name,
        price=_price_per_million(entry),
        context_window=entry.model_info.max_input_tokens or 0,
        capabilities=frozenset(entry.model_info.capabilities),
        weight=entry.litellm_params.weight,
        profile=entry.model_info.router_profile,
    )


class ModelCatalog:
    """Resolves ``model`` names; built once per replica."""

    def __init__(self, cfg: GatewayConfig) -> None:
        self.deployments: dict[str, list[Deployment]] = {}
        for i, entry in enumerate(cfg.model_list):
            self.deployments.setdefault(entry.model_name, []).append(Deployment(i, entry))
        chat = [d[0].entry for d in self.deployments.values() if d[0].entry.model_info.mode == "chat"]
        self.routers: dict[str, RouterTarget] = {}
        for r in cfg.router_settings.routers:
            names = set(r.candidates) or {e.model_name for e in chat}
            cands = tuple(_candidate(e) for e in chat if e.model_name in names)
            self.routers[r.name] = RouterTarget(r, r.lam, cands)
        for alias, a in cfg.router_settings.aliases.items():
            base = self.routers[a.router]
            self.routers[alias] = RouterTarget(base.router, a.lam, base.candidates)

    def candidate(self, name: str) -> Candidate:
        """A model as a routing candidate (price, context window, capabilities)."""
        return _candidate(self.deployments[name][0].entry)

    def model(self, name: str) -> list[Deployment]:
        """The deployments serving ``name``; 404 when there are none."""
        try:
            return self.deployments[name]
        except KeyError:
            raise NotFoundError(f"The model `{name}` does not exist", param="model") from None

    def public_names(self) -> list[str]:
        return [*self.deployments, *self.routers]


def required_capabilities(body: dict[str, Any]) -> frozenset[str]:
    """Capabilities a chat request needs from the model that answers it."""
    caps = set()
    if body.get("tools") or body.get("functions"):
        caps.add("tools")
    if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
        caps.add("json")
    for m in body.get("messages") or []:
        if isinstance(m.get("content"), list) and any(p.get("type") == "image_url" for p in m["content"]):
            caps.add("vision")
    return frozenset(caps)


def fitting(
    candidates: tuple[Candidate, ...], body: dict[str, Any], allowed: Collection[str] | None = None,
    *, strict: bool = True,
) -> tuple[Candidate, ...]:
    """Candidates the caller may use that fit this request; 400 when none is left (``strict``)."""
    tokens = estimate_tokens(body)
    caps = required_capabilities(body)
    kept = tuple(
        c
        for c in candidates
        if (allowed is None or c.name in allowed)
        and (not c.context_window or tokens <= c.context_window)
        and caps <= c.capabilities
    )
    if not kept and strict:
        need = f" with {', '.join(sorted(caps))}" if caps else ""
        raise InvalidRequestError(
            f"no model you may use fits this request (~{tokens} tokens{need})", param="model", code="no_candidate"
        )
    return kept


def query_text(body: dict[str, Any]) -> str:
    """The text a learned router embeds: the last user turn (or the prompt)."""
    for m in reversed(body.get("messages") or []):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    prompt = body.get("prompt", "")
    return prompt if isinstance(prompt, str) else ""
