"""HMAC-SHA256 signing of ``manifest.json`` (which holds the sha256 of every other file).

Signing the manifest bytes is enough: a changed weight file breaks its hash, a changed
hash breaks the signature. The key comes from an argument or ``ROUTEIQ_ROUTER_SIGNING_KEY``;
when one is configured, an artifact without a valid ``manifest.sig`` is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import os

SIGNING_KEY_ENV = "ROUTEIQ_ROUTER_SIGNING_KEY"
SIGNATURE_FILE = "manifest.sig"


def resolve_key(key: bytes | str | None) -> bytes | None:
    """The explicit key if given, else the environment's, else ``None`` (no signing)."""
    if key is None:
        key = os.environ.get(SIGNING_KEY_ENV) or None
    if key is None:
        return None
    raw = key.encode() if isinstance(key, str) else bytes(key)
    if not raw:
        raise ValueError("an empty signing key is not a key")
    return raw


def sign(manifest_bytes: bytes, key: bytes) -> str:
    return hmac.new(key, manifest_bytes, hashlib.sha256).hexdigest()


def verify(manifest_bytes: bytes, signature: str, key: bytes) -> bool:
    return hmac.compare_digest(sign(manifest_bytes, key), signature.strip())
