"""Who is calling: bearer-token authentication for ``/v1/*``.

Keys are compared in constant time. The master key may do everything; virtual keys
(with their own allowlists and limits) are resolved by a ``KeyStore`` when one is
configured.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from app.errors import AuthenticationError


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    key_id: str
    is_admin: bool = False
    allowed_models: frozenset[str] | None = None


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; 401 if absent."""
    if not authorization:
        raise AuthenticationError("Missing API key: send `Authorization: Bearer <key>`")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("Malformed Authorization header: expected `Bearer <key>`")
    return token.strip()


class Authenticator:
    """Checks bearer tokens against the master key."""

    def __init__(self, master_key: str) -> None:
        self._master = master_key.encode()

    def authenticate(self, authorization: str | None) -> Principal:
        token = bearer_token(authorization)
        if hmac.compare_digest(token.encode(), self._master):
            return Principal(key_id="master", is_admin=True)
        raise AuthenticationError("Incorrect API key provided")
