"""The console's session cookie and CSRF token: stateless, so any ingress replica accepts them.

A session token is ``<payload>.<mac>``: the payload (base64url JSON) names the signed-in key
(its id, a fingerprint of its stored hash) and when the session ends; the MAC is HMAC-SHA256
under a secret derived from the master key. Nothing is kept server-side, so several
replicas need no shared store; rotating the master key ends every session. The key itself
is never in the token: a stolen cookie expires, and regenerating, blocking or deleting the
key ends it at once (``app.console.operator`` re-reads the key on every request).

The CSRF token is a synchroniser token derived from the session token (another HMAC), put
in each page and required in the ``x-csrf-token`` header of every mutating request: a
cross-site form can neither read it nor compute it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson

SESSION_TTL_S = 8 * 3600
"""A working day: the operator signs in again after it."""
COOKIE = "routeiq_console"
CSRF_HEADER = "x-csrf-token"
_CONTEXT = b"routeiq-console-session-v1"


@dataclass(frozen=True)
class Session:
    key_id: str
    """``master`` or a virtual key's id."""
    fingerprint: str
    """The first 16 hex digits of the key's stored hash (``master`` for the master key): a
    regenerated key has another hash, so its old sessions no longer match."""
    expires_at: float


class SessionCodec:
    """Signs and checks session tokens and their CSRF tokens."""

    def __init__(self, master_key: str, ttl_s: float = SESSION_TTL_S) -> None:
        self._secret = hmac.new(master_key.encode(), _CONTEXT, hashlib.sha256).digest()
        self._ttl = ttl_s

    def issue(self, key_id: str, fingerprint: str, now: float | None = None) -> str:
        expires = (time.time() if now is None else now) + self._ttl
        payload = {"k": key_id, "f": fingerprint, "e": int(expires), "n": secrets.token_hex(8)}
        body = _b64(orjson.dumps(payload))
        return f"{body}.{self._mac(body.encode())}"

    def read(self, token: str | None, now: float | None = None) -> Session | None:
        """The session of a valid, unexpired token; ``None`` for anything else (never raises)."""
        if not token or token.count(".") != 1 or len(token) > 1024:
            return None
        body, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac(body.encode())):
            return None
        try:
            payload = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            session = Session(str(payload["k"]), str(payload["f"]), float(payload["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires_at > (time.time() if now is None else now) else None

    def csrf(self, token: str) -> str:
        """The CSRF token of a session token."""
        return self._mac(b"csrf:" + token.encode())

    def csrf_ok(self, token: str | None, sent: str | None) -> bool:
        return bool(token and sent) and hmac.compare_digest(self.csrf(token or ""), sent or "")

    def _mac(self, data: bytes) -> str:
        return _b64(hmac.new(self._secret, data, hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
