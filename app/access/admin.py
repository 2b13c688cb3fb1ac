"""Key and team management behind the admin routes, with its audit trail.

Each method does the store change, publishes the new version to the limiter (so every
replica's cached copy is reloaded at its next request) and forgets this replica's
copy. The routes record each action in the audit log. A raw key exists only in
``generate``'s return value; everything stored or listed is the hash or the hint.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from app.access.keys import hash_key, key_hint, new_id, new_key, now_utc, parse_duration, utc
from app.access.policy import VirtualKeyPolicy, limits_of
from app.errors import InvalidRequestError, NotFoundError

HIDDEN = {"key_hash", "version"}


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A key or team row as the API shows it (no hash)."""
    out = {k: utc(v) if isinstance(v, datetime) else v for k, v in row.items() if k not in HIDDEN}
    if "expires_at" in out:
        out["expires"] = out.pop("expires_at")
    return out


class AccessAdmin:
    def __init__(self, policy: VirtualKeyPolicy) -> None:
        self.policy = policy
        self.store = policy.store

    async def _bump(self, kind: str, rows: list[dict[str, Any]], delta: int = 0) -> None:
        for row in rows:
            ident = row["key_id"] if kind == "key" else row["team_id"]
            ver_key = self.policy.scope_keys(kind, ident, row.get("team_id"))[0]
            await self.policy.guarded(self.policy.limiter.bump(ver_key, int(row["version"]) + delta))

    async def _team_exists(self, team_id: str | None) -> None:
        if team_id is not None and await self.store.get("teams", team_id) is None:
            raise InvalidRequestError(f"unknown team `{team_id}`", param="team_id")

    # keys -------------------------------------------------------------------------------------
    async def generate(self, body: dict[str, Any], actor: str) -> dict[str, Any]:
        await self._team_exists(body.get("team_id"))
        key, now = new_key(), now_utc()
        expires = body.pop("expires", None)
        if (duration := body.pop("duration", None)) is not None:
            expires = now + timedelta(seconds=parse_duration(duration) or 0)
        row = {**body, "key_id": new_id("key"), "key_hash": hash_key(key), "key_hint": key_hint(key),
               "expires_at": expires, "blocked": bool(body.get("blocked")), "budget_anchor": now,
               "version": 1, "created_by": actor, "created_at": now, "updated_at": now}
        await self.store.insert("keys", row)
        return {"key": key, **public(row)}

    async def find_key(self, ref: str) -> dict[str, Any]:
        """A key row by the key itself (``sk-…``) or by its ``key_id``; 404 otherwise."""
        row = await (self.store.get("keys", hash_key(ref), by="key_hash") if ref.startswith("sk-")
                     else self.store.get("keys", ref))
        if row is None:
            raise NotFoundError("no such key", param="key", code="key_not_found")
        return row

    async def info(self, ref: str) -> dict[str, Any]:
        """The key with its spend in the current budget window (lifetime without a
        ``budget_duration``) and when that window ends (``budget_reset_at``), as LiteLLM's."""
        row = await self.find_key(ref)
        spend, reset_at = await self._window_spend("key_id", row["key_id"], row)
        return {"key_id": row["key_id"], "info": {**public(row), "spend": spend, "budget_reset_at": reset_at}}

    async def _window_spend(self, column: str, ident: str, row: dict[str, Any]) -> tuple[float, datetime | None]:
        """Spend of a key or team in its current budget window (lifetime without one) and
        when that window ends."""
        span = limits_of(row, self.policy.budget_tz).window(time.time())
        since = None if span is None else datetime.fromtimestamp(span[0], UTC)
        spend = await self.store.spend_since(column, ident, since)
        return spend, None if span is None else datetime.fromtimestamp(span[1], UTC)

    async def regenerate(self, ref: str, new_key_value: str | None = None) -> dict[str, Any]:
        """A new secret for the same key id and settings; the old secret stops at once.

        The hash changes in one UPDATE, which bumps the record's version: every replica that
        cached the old secret's grant re-reads it at its next request (``admit`` reports it
        stale, ``verify`` on admin calls) and finds no key under that hash any more, and this
        replica forgets it now. Spend and limits stay with the key id."""
        row = await self.find_key(ref)
        key = new_key_value or new_key()
        updated = await self.store.update("keys", row["key_id"], {"key_hash": hash_key(key), "key_hint": key_hint(key)})
        if updated is None:
            raise NotFoundError("no such key", param="key", code="key_not_found")
        await self._bump("key", [updated])
        self.policy.invalidate({row["key_id"]})
        return {"key": key, **public(updated)}

    async def update_key(self, ref: str, changes: dict[str, Any]) -> dict[str, Any]:
        row = await self.find_key(ref)
        if "team_id" in changes:
            await self._team_exists(changes["team_id"])
        if "expires" in changes:
            changes["expires_at"] = changes.pop("expires")
        updated = await self.store.update("keys", row["key_id"], changes)
        if updated is None:
            raise NotFoundError("no such key", param="key", code="key_not_found")
        moved = updated["team_id"] != row["team_id"]  # replicas caching it read its old team's version key
        await self._bump("key", [updated, {**updated, "team_id": row["team_id"]}] if moved else [updated])
        self.policy.invalidate({row["key_id"]})
        return public(updated)

    async def delete_keys(self, refs: list[str]) -> list[str]:
        ids = [(await self.find_key(r))["key_id"] for r in refs]
        rows = await self.store.delete("keys", ids)
        await self._bump("key", rows, delta=1)
        self.policy.invalidate({r["key_id"] for r in rows})
        return [r["key_id"] for r in rows]

    async def list_keys(self, filters: dict[str, str | None], tags: list[str], page: int,
                        size: int) -> dict[str, Any]:
        """Keys matching every filter (``team_id``, ``user_id``, ``key_alias``: equal) and
        carrying every one of ``tags``."""
        rows, total = await self.store.page("keys", filters, (page - 1) * size, size, tags=tags)
        return {"keys": [public(r) for r in rows], "total_count": total, "current_page": page,
                "total_pages": max(1, -(-total // size))}

    # teams ------------------------------------------------------------------------------------
    async def new_team(self, body: dict[str, Any]) -> dict[str, Any]:
        now = now_utc()
        team_id = body.pop("team_id", None) or new_id("team")
        if await self.store.get("teams", team_id) is not None:
            raise InvalidRequestError(f"team `{team_id}` already exists", param="team_id", code="team_exists")
        row = {**body, "team_id": team_id, "blocked": bool(body.get("blocked")), "budget_anchor": now,
               "version": 1, "created_at": now, "updated_at": now}
        await self.store.insert("teams", row)
        return public(row)

    async def team_info(self, team_id: str) -> dict[str, Any]:
        row = await self.store.get("teams", team_id)
        if row is None:
            raise NotFoundError(f"no such team `{team_id}`", param="team_id", code="team_not_found")
        spend, reset_at = await self._window_spend("team_id", team_id, row)
        keys = await self.store.team_key_ids([team_id])
        return {"team_id": team_id, "team_info": {**public(row), "spend": spend, "budget_reset_at": reset_at},
                "keys": keys}

    async def update_team(self, team_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        updated = await self.store.update("teams", team_id, changes)
        if updated is None:
            raise NotFoundError(f"no such team `{team_id}`", param="team_id", code="team_not_found")
        await self._bump("team", [updated])
        self.policy.invalidate(team_id=team_id)
        return public(updated)

    async def delete_teams(self, team_ids: list[str]) -> dict[str, list[str]]:
        """Delete teams and their keys (as LiteLLM does)."""
        key_ids = await self.store.team_key_ids(team_ids)
        keys = await self.store.delete("keys", key_ids) if key_ids else []
        teams = await self.store.delete("teams", team_ids)
        await self._bump("key", keys, delta=1)
        await self._bump("team", teams, delta=1)
        self.policy.invalidate({k["key_id"] for k in keys})
        for t in teams:
            self.policy.invalidate(team_id=t["team_id"])
        return {"deleted_teams": [t["team_id"] for t in teams], "deleted_keys": [k["key_id"] for k in keys]}

    async def list_teams(self, page: int, size: int) -> dict[str, Any]:
        rows, total = await self.store.page("teams", {}, (page - 1) * size, size)
        return {"teams": [public(r) for r in rows], "total_count": total, "current_page": page}
