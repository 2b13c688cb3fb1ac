"""A deployment's own ``rpm``/``tpm`` (LiteLLM's per-deployment limits), on the access limiter.

Each ``model_list`` entry with ``rpm`` or ``tpm`` is one more limiter ``Scope``
(``{prefix}:dep:<index>:*``): the same exact sliding RPM window and 10-second TPM buckets
as keys and teams, in Redis when configured (so the limit is the deployment's, across
every replica), in process otherwise. Before a deployment is called it is admitted with
the request's ``Demand`` (prompt estimate plus ``max_tokens``, else the reserved answer
length); a deployment at its limit is skipped for the next one of its group, and when
every candidate is at its limit the request gets a 429. When the request settles, the
hold is replaced by the tokens the answer used (released when that deployment did not
answer), as a key's TPM is.

Must not: limit entries without ``rpm``/``tpm`` (no limiter call for them unless
``usage-based-routing-v2`` needs their usage counted), or fail a
request because the limiter is down (the ``FallbackLimiter`` counts locally then).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from app.access.limits import OK, Limiter, Scope, retry_after_s
from app.auth import NO_RESERVATION, Demand, Reservation
from app.gateway.catalog import Deployment


class DeploymentLimits:
    """Admits calls to deployments with ``rpm``/``tpm``; reads their TPM usage."""

    def __init__(self, limiter: Limiter, prefix: str, *, track_all: bool = False) -> None:
        self._limiter = limiter
        self._prefix = prefix
        self._track_all = track_all
        """Count every deployment's tokens, limited or not (``usage-based-routing-v2`` reads them)."""

    def scope(self, d: Deployment) -> Scope | None:
        params = d.entry.litellm_params
        if params.rpm is None and params.tpm is None and not self._track_all:
            return None
        base = f"{self._prefix}:dep:{d.index}"
        return Scope("deployment", 0, params.rpm, params.tpm, None, f"{base}:ver", f"{base}:rpm", f"{base}:tpm",
                     f"{base}:spend")

    async def admit(self, d: Deployment, demand: Demand) -> Reservation | float:
        """Count one call to ``d`` and hold its tokens: the hold (``charge`` replaces it), or the
        seconds until ``d`` has room when it is at its ``rpm`` or ``tpm`` limit."""
        if (scope := self.scope(d)) is None:
            return NO_RESERVATION
        verdict = await self._limiter.admit([scope], secrets.token_hex(8), Demand(demand.tokens, 0.0,
                                                                                  demand.min_tokens, 0.0))
        return verdict.reservation if verdict.code == OK else retry_after_s(verdict.retry_ms)

    async def charge(self, d: Deployment, tokens: int, held: Reservation) -> None:
        """``d``'s call settled having used ``tokens`` (0: it got no answer): replace its hold."""
        if (scope := self.scope(d)) is not None and held != NO_RESERVATION:
            await self._limiter.charge([scope], tokens, 0.0, held)

    async def tokens_used(self, deployments: Sequence[Deployment]) -> list[int]:
        """Tokens each deployment took in the current minute (0 for one without limits)."""
        scopes = [self.scope(d) for d in deployments]
        keys = [s.tpm_key for s in scopes if s is not None]
        used = iter(await self._limiter.tokens_used(keys) if keys else [])
        return [next(used) if s is not None else 0 for s in scopes]

    async def close(self) -> None:
        await self._limiter.close()
