"""Who is calling and what they may spend: the ``AccessPolicy`` seam of the request path.

Every request goes, in this order: ``authenticate`` (key valid, not expired or
blocked) → model allowed (the gateway narrows ``auto``'s candidates to the
principal's allowlist) → ``admit`` (RPM/TPM limits, budget) → provider call →
``settle`` (tokens actually used: spend, TPM). ``MasterKeyPolicy`` is the policy with
only a master key and no limits; richer policies (virtual keys, teams, Redis limits,
Postgres spend) implement the same protocol.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.errors import AuthenticationError
from app.providers.base import Usage


@dataclass(frozen=True)
class Demand:
    """What one request may use at most, as admission reserves it.

    ``floor_*``: the part that must fit for the request to be admitted at all (the prompt,
    plus ``max_tokens`` when the client set it). Beyond it, admission reserves what is left
    of the limit, up to ``tokens``/``cost``: a request without ``max_tokens`` is not refused
    because a default answer length would not fit, and concurrent requests still cannot
    overshoot (each reservation takes what it can of what is left). ``None``: all of it.
    """

    tokens: int = 0
    cost: float = 0.0
    floor_tokens: int | None = None
    floor_cost: float | None = None

    @property
    def min_tokens(self) -> int:
        return self.tokens if self.floor_tokens is None else min(self.floor_tokens, self.tokens)

    @property
    def min_cost(self) -> float:
        return self.cost if self.floor_cost is None else min(self.floor_cost, self.cost)


@dataclass(frozen=True)
class RateState:
    """What is left of the caller's RPM and TPM windows after its admission, for LiteLLM's
    (and OpenAI's) ``x-ratelimit-*`` response headers; ``None``: no such limit. Resets are
    milliseconds until the window next frees room."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_ms: int | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_ms: int | None = None

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for kind in ("requests", "tokens"):
            limit, left, reset = (getattr(self, name) for name in (f"limit_{kind}", f"remaining_{kind}",
                                                                   f"reset_{kind}_ms"))
            if limit is None:
                continue
            out[f"x-ratelimit-limit-{kind}"] = str(limit)
            out[f"x-ratelimit-remaining-{kind}"] = str(max(0, left or 0))
            out[f"x-ratelimit-reset-{kind}"] = _duration(max(0, reset or 0))
        return out


def _duration(ms: int) -> str:
    """OpenAI's reset format: ``1s``, ``6m0s``, ``250ms``."""
    if ms < 1000:
        return f"{ms}ms"
    seconds = round(ms / 1000)
    return f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 else f"{seconds}s"


@dataclass(frozen=True)
class Reservation:
    """What admission held back for one request, reconciled by ``charge``."""

    tokens: int = 0
    cost: float = 0.0
    bucket: int = -1
    """The TPM bucket (limiter clock // 10 s) the tokens went into; -1: none."""
    spend_keys: tuple[str, ...] = ()
    """Per scope, the budget counter the cost went into (a new budget window: not this one)."""
    origin: str = ""
    """``redis`` or ``local``: which limiter holds it (``FallbackLimiter`` reconciles there)."""
    member: str = ""
    """The request's entry in its keys' in-flight sets (``max_parallel_requests``); '': none."""
    model: str = ""
    """The model admitted (its per-model limits are the ones to reconcile, whatever answered)."""
    rate: RateState | None = field(default=None, compare=False)
    """What is left of the RPM/TPM windows after this admission (response headers)."""


NO_RESERVATION = Reservation()


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    key_id: str
    is_admin: bool = False
    allowed_models: frozenset[str] | None = None
    team_id: str | None = None
    explore: bool = True
    """False when the key (or its team) opted out of exploration (metadata ``routeiq_explore: false``)."""
    grant: object | None = field(default=None, compare=False, repr=False)
    """The policy's own record of the caller (limits, versions); opaque to the gateway."""


class AccessPolicy(Protocol):
    """Authentication, admission (limits, budget) and settlement (spend) of requests.

    ``start``/``close`` run with the replica (migrations, background flushers, draining
    buffers); the clients they use are the replica's, built and closed by ``app.wiring``.
    """

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def health(self) -> dict[str, Any]:
        """Readiness detail: each dependency's state (``{"status": "down", ...}`` when down)."""
        ...

    async def authenticate(self, authorization: str | None) -> Principal: ...

    async def verify(self, principal: Principal) -> Principal:
        """The caller as it is now: re-read if its record changed on any replica (blocked,
        deleted, new limits). The inference path gets the same check inside ``admit``."""
        ...

    async def admit(self, principal: Principal, model: str, demand: Demand) -> Reservation:
        """Check the limits and reserve ``demand`` (TPM, budget) atomically; raise
        ``RateLimitError`` (429) or ``InvalidRequestError`` (400: budget, too big) to refuse."""
        ...

    def settle(self, principal: Principal, model: str, usage: Usage | None, request_id: str,
               reservation: Reservation = ...) -> None:
        """Record what a request used (``None``: it got no answer) and replace its reservation:
        queue it, never wait (it runs in the request's final cleanup, also when the client is
        gone and the task is being cancelled)."""
        ...


KEY_HEADERS = ("x-api-key", "api-key")
"""Where other SDKs send the key: Anthropic's (``x-api-key``) and Azure OpenAI's (``api-key``)."""


def api_credential(headers: Mapping[str, str]) -> str | None:
    """The request's credential as an ``Authorization`` value: that header when sent, else
    ``Bearer <key>`` from ``x-api-key`` or ``api-key``. The key then meets exactly the checks a
    bearer token meets (key-shaped, known, valid): another header is only another envelope."""
    if authorization := headers.get("authorization"):
        return authorization
    for name in KEY_HEADERS:
        if key := headers.get(name, "").strip():
            return f"Bearer {key}"
    return None


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; 401 if absent."""
    if not authorization:
        raise AuthenticationError("Missing API key: send `Authorization: Bearer <key>` (or `x-api-key: <key>`)")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("Malformed Authorization header: expected `Bearer <key>`")
    return token.strip()


def is_master(token: str, master_key: str) -> bool:
    """Constant-time comparison with the master key."""
    return hmac.compare_digest(token.encode(), master_key.encode())


class MasterKeyPolicy:
    """Only the master key, no limits, no spend records (the policy of the bare gateway)."""

    def __init__(self, master_key: Callable[[], str]) -> None:
        self._master_key = master_key
        """A callable, so a rotated key (a re-read secret file) takes effect at once."""

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def health(self) -> dict[str, Any]:
        return {}

    async def authenticate(self, authorization: str | None) -> Principal:
        if is_master(bearer_token(authorization), self._master_key()):
            return Principal(key_id="master", is_admin=True)
        raise AuthenticationError("Incorrect API key provided")

    async def verify(self, principal: Principal) -> Principal:
        return principal

    async def admit(self, principal: Principal, model: str, demand: Demand) -> Reservation:
        return NO_RESERVATION

    def settle(self, principal: Principal, model: str, usage: Usage | None, request_id: str,
               reservation: Reservation = NO_RESERVATION) -> None:
        return None
