"""Virtual keys: how they are made, hashed and described, and what a key is granted.

A key is ``sk-`` plus 32 random bytes (base64url): 256 bits of entropy. It is shown
once, at creation, and stored only as its SHA-256 hex digest. A slow password hash
(bcrypt, argon2) protects *low-entropy* secrets against offline guessing; a 256-bit
random key cannot be guessed, so a fast hash loses nothing and keeps the per-request
lookup cheap (a bcrypt check costs ~100 ms of CPU, a SHA-256 ~1 µs). This module
never logs a key and never returns one except from ``new_key``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from app.access.budget_window import window as budget_window

KEY_PREFIX = "sk-"
_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w|mo)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400}


def new_key() -> str:
    """A fresh virtual key (shown once)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_id(prefix: str) -> str:
    """A public identifier (not a secret): ``key_…`` or ``team_…``."""
    return f"{prefix}_{secrets.token_hex(8)}"


def hash_key(key: str) -> str:
    """SHA-256 hex digest: the only form in which a key is stored or cached."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_hint(key: str) -> str:
    """``sk-...abcd``: enough to tell keys apart in a list, useless to an attacker."""
    return f"{KEY_PREFIX}...{key[-4:]}"


def parse_duration(value: str | None) -> int | None:
    """LiteLLM-style durations (``30s``, ``10m``, ``1h``, ``7d``, ``1w``, ``1mo``) in seconds."""
    if value is None:
        return None
    match = _DURATION.match(value.strip())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"invalid duration {value!r}: expected e.g. 30s, 10m, 1h, 7d, 1mo")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def utc(dt: datetime | None) -> datetime | None:
    """Aware UTC (SQLite hands back naive datetimes, which are UTC by construction)."""
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Limits:
    """RPM, TPM and budget of one scope (a key or a team); ``None`` means unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    budget: float | None = None
    budget_duration: str | None = None
    """LiteLLM's ``budget_duration`` (``app.access.budget_window``); ``None``: the budget is
    for the scope's lifetime."""
    budget_anchor: float = 0.0
    """Epoch seconds of the record's creation (where day-counted windows start)."""
    version: int = 1
    budget_tz: str = "UTC"
    """Timezone of calendar-aligned budget resets (``access.budget_timezone``)."""

    def window(self, now: float) -> tuple[float, float] | None:
        """``(start, end)`` in epoch seconds of the budget window containing ``now``; ``None``:
        a lifetime budget (no window)."""
        if not self.budget_duration:
            return None
        start, end = budget_window(self.budget_duration, datetime.fromtimestamp(self.budget_anchor, UTC),
                            datetime.fromtimestamp(now, UTC), self.budget_tz)
        return start.timestamp(), end.timestamp()


@dataclass(frozen=True)
class Grant:
    """What a virtual key may do, as cached per replica (no secret in it)."""

    key_id: str
    key: Limits
    team_id: str | None = None
    team: Limits | None = None
    models: frozenset[str] | None = None
    """Effective allowlist: the key's, narrowed by its team's; ``None``: all models."""
    admin: bool = False
    blocked: bool = False
    expires_at: float | None = None
    key_hash: str = ""
    """The hash the grant was found under: a regenerated key's old secret no longer matches."""
    user_id: str | None = None
    parallel: int | None = None
    """``max_parallel_requests``."""
    model_limits: tuple[tuple[str, Limits], ...] = ()
    """Per model, the key's own RPM, TPM and budget on it (``model_rpm_limit``,
    ``model_tpm_limit``, ``model_max_budget``)."""
    soft_budget: float | None = None

    def model_limits_for(self, model: str) -> Limits | None:
        return next((lim for m, lim in self.model_limits if m == model), None)

    explore: bool = True
    """Neither the key's nor its team's metadata says ``routeiq_explore: false``."""

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def effective_models(key_models: list[str] | None, team_models: list[str] | None) -> frozenset[str] | None:
    """The key's allowlist narrowed by its team's (empty or absent lists allow all)."""
    sets = [frozenset(m) for m in (key_models, team_models) if m]
    if not sets:
        return None
    return sets[0] if len(sets) == 1 else sets[0] & sets[1]
