"""The per-replica cache of key lookups, shaped so unauthenticated traffic cannot reach the database.

Every request's bearer token is hashed and looked up here before the database:

- **Known keys** (``Grant``s) are kept for ``ttl_s``, in a bounded LRU: a flood of new
  entries evicts the oldest ones, never the whole cache (the old code cleared it
  wholesale at 50,000 entries, so random tokens could evict every real key).
- **Unknown hashes** are remembered as unknown for ``ttl_s``, in their own bounded LRU,
  so a repeated bad token costs no query.
- **Lookups of hashes not in either** are rate-limited per replica (a token bucket of
  ``lookups_per_s``): a stream of random well-formed tokens costs at most that many
  queries a second, whatever its rate. Past the budget, a key whose cached grant just
  expired keeps its stale grant (as while the database is down), and a hash never seen
  here gets a 503 with ``Retry-After`` (a real new key succeeds on retry; an attacker
  learns nothing).

Tokens that are not even shaped like a virtual key are refused before any of this
(``is_key_shaped``). Single event loop: no locks. Must not: store or log a raw key.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict

from app.access.keys import Grant

_KEY_SHAPE = re.compile(r"^sk-[A-Za-z0-9_-]{43}$")
"""``keys.new_key``: ``sk-`` and 32 random bytes in base64url (43 characters)."""


def is_key_shaped(token: str) -> bool:
    """Whether ``token`` could be a virtual key at all (checked before any lookup)."""
    return _KEY_SHAPE.match(token) is not None


class KeyCache:
    """Known grants, known-unknown hashes, and a budget for looking up the rest."""

    def __init__(self, ttl_s: float, *, max_known: int = 50_000, max_unknown: int = 20_000,
                 lookups_per_s: float = 50.0) -> None:
        self._ttl = ttl_s
        self._known: OrderedDict[str, tuple[float, Grant]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._max_known, self._max_unknown = max_known, max_unknown
        self._rate = lookups_per_s
        self._tokens = lookups_per_s * 2
        """Bucket of lookups (burst: two seconds' worth)."""
        self._refilled = time.monotonic()
        self.throttled = 0
        """Lookups refused by the budget (exposed for tests and metrics)."""

    def fresh(self, key_hash: str) -> tuple[bool, Grant | None]:
        """(True, grant or None-for-unknown) when cached and not expired, else (False, None)."""
        now = time.monotonic()
        if (hit := self._known.get(key_hash)) is not None and hit[0] > now:
            self._known.move_to_end(key_hash)
            return True, hit[1]
        if (until := self._unknown.get(key_hash)) is not None and until > now:
            return True, None
        return False, None

    def stale(self, key_hash: str) -> Grant | None:
        """The last grant known for ``key_hash``, however old."""
        hit = self._known.get(key_hash)
        return hit[1] if hit is not None else None

    def may_look_up(self) -> bool:
        """Take one lookup from the budget; ``False`` when it is spent."""
        now = time.monotonic()
        self._tokens = min(self._rate * 2, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        if self._tokens < 1:
            self.throttled += 1
            return False
        self._tokens -= 1
        return True

    def put(self, key_hash: str, grant: Grant | None) -> None:
        until = time.monotonic() + self._ttl
        if grant is None:
            self._known.pop(key_hash, None)
            self._unknown[key_hash] = until
            self._unknown.move_to_end(key_hash)
            if len(self._unknown) > self._max_unknown:
                self._unknown.popitem(last=False)
            return
        self._unknown.pop(key_hash, None)
        self._known[key_hash] = (until, grant)
        self._known.move_to_end(key_hash)
        if len(self._known) > self._max_known:
            self._known.popitem(last=False)

    def keep(self, key_hash: str, grant: Grant) -> None:
        """Extend a stale grant (the database is down, or the lookup budget is spent)."""
        self._known[key_hash] = (time.monotonic() + self._ttl, grant)

    def forget(self, key_ids: set[str] | None = None, team_id: str | None = None) -> None:
        """Drop cached grants of these keys, or of this team's keys."""
        for h, (_, g) in list(self._known.items()):
            if g.key_id in (key_ids or ()) or (team_id and g.team_id == team_id):
                del self._known[h]
