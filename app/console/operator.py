"""Who is signed in to the console: the admin API's rules, applied to a session cookie.

Sign-in takes a key exactly as the admin API does (``AccessPolicy.authenticate``, then
``verify``): the master key or a virtual key with ``admin: true``; any other key is refused
like ``app.deps.admin_call`` refuses it, and the refusal is audited. Every later request
re-reads the key behind the session (by id; its hash must still match the session's
fingerprint) and checks it again, so a key blocked, deleted, expired or regenerated on any
replica loses the console at its next request.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from app.access.keys import hash_key
from app.access.policy import VirtualKeyPolicy
from app.auth import Principal
from app.console.session import COOKIE, CSRF_HEADER, SessionCodec
from app.errors import AuthenticationError, PermissionDeniedError
from app.gateway import Gateway

MASTER = "master"


@dataclass(frozen=True)
class Operator:
    """A signed-in console user: the principal, its session token and that token's CSRF token."""

    principal: Principal
    token: str
    csrf: str


def codec(gateway: Gateway) -> SessionCodec:
    """Per request: the master key is re-read per request (a rotated key ends every session)."""
    return SessionCodec(gateway.cfg.master_key())


async def sign_in(gateway: Gateway, key: str) -> Operator:
    """A session for ``key``; 401 for a wrong key, 403 for a key that is not an admin."""
    policy = gateway.policy
    principal = await policy.verify(await policy.authenticate(f"Bearer {key.strip()}"))
    await _require_admin(gateway, principal, "console.sign_in")
    fingerprint = MASTER if principal.key_id == MASTER else hash_key(key.strip())[:16]
    token = codec(gateway).issue(principal.key_id, fingerprint)
    return Operator(principal, token, codec(gateway).csrf(token))


async def current(gateway: Gateway, request: Request, *, mutating: bool, csrf: str | None = None) -> Operator:
    """The operator of this request's session; 401 without a valid one, 403 on a mutating
    request without its CSRF token (the ``x-csrf-token`` header, or ``csrf`` from a form)."""
    sessions = codec(gateway)
    token = request.cookies.get(COOKIE)
    session = sessions.read(token)
    if session is None or token is None:
        raise AuthenticationError("Sign in to the console", code="console_signed_out")
    if session.key_id == MASTER:
        principal = Principal(key_id=MASTER, is_admin=True)
    else:
        principal = await _virtual_key(gateway, session.key_id, session.fingerprint)
    await _require_admin(gateway, principal, "console.session")
    if mutating and not sessions.csrf_ok(token, csrf or request.headers.get(CSRF_HEADER)):
        raise PermissionDeniedError("Missing or wrong CSRF token (reload the page)", code="csrf_failed")
    return Operator(principal, token, sessions.csrf(token))


async def _virtual_key(gateway: Gateway, key_id: str, fingerprint: str) -> Principal:
    policy = gateway.policy
    if not isinstance(policy, VirtualKeyPolicy):
        raise AuthenticationError("Sign in to the console", code="console_signed_out")
    row = await policy.store.get("keys", key_id)
    if row is None or not str(row["key_hash"]).startswith(fingerprint):
        raise AuthenticationError("This key was deleted or regenerated: sign in again", code="console_signed_out")
    return await policy.verify(await policy.authenticate_hash(str(row["key_hash"])))


async def _require_admin(gateway: Gateway, principal: Principal, action: str) -> None:
    if principal.is_admin:
        return
    if isinstance(policy := gateway.policy, VirtualKeyPolicy):
        await policy.store.audit(principal.key_id, action, None, "denied")
    raise PermissionDeniedError("only the master key or an admin key may use the console", code="admin_only")
