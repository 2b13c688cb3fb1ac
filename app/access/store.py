"""The access store: keys, teams, spend and audit rows in Postgres (or SQLite).

Plain SQLAlchemy Core over one ``AsyncEngine``; the same statements run on asyncpg
and aiosqlite. Foreign errors (asyncpg, sqlite3, SQLAlchemy, socket) are mapped to
``StoreUnavailableError`` (or, for a value the database refused, ``StoreDataError``:
``app.access.dberrors``) here, at the one boundary where the database is called,
and every call has a deadline. A connection-level failure opens the store's
``Breaker``: until a background ``SELECT 1`` finds the database again, every call
fails fast (no connect timeouts piling up) and callers take their fallback (cached
keys, the spend buffer). Raw keys never reach this module: only hashes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.access.dberrors import StoreDataError, StoreUnavailableError, is_read_only, translated
from app.access.keys import now_utc, utc
from app.access.latency_histogram import COLUMNS
from app.access.normalise import INT32_MAX, Normaliser
from app.access.tables import audit_log, keys, request_minutes, spend_logs, spend_minutes, teams
from app.background import stop
from app.breaker import Breaker

PROBE_TIMEOUT_S = 2.0
PROBE_EVERY_S = 2.0
_AUDIT = Normaliser(audit_log)
_SPEND = Normaliser(spend_logs)


@dataclass(frozen=True)
class SpendEvent:
    """One finished request, as buffered for the database."""

    event_id: str
    request_id: str
    key_id: str
    team_id: str | None
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    created_at: datetime
    usage_estimated: bool = False
    """The tokens are the gateway's estimate: the upstream reported none."""
    user_id: str | None = None
    """The key's ``user_id`` when it was spent (LiteLLM's ``/spend/logs?user_id=``)."""

    def row(self) -> dict[str, Any]:
        return {**self.__dict__, "total_tokens": min(self.prompt_tokens + self.completion_tokens, INT32_MAX)}

    def normalised(self) -> SpendEvent:
        """This event as its columns can hold it (``app.access.normalise``): strings cut to
        their sizes and cleaned, token counts within ``INTEGER``, a non-finite cost 0."""
        return SpendEvent(**_SPEND.row(self.__dict__))


GROUPS = {"key": spend_minutes.c.key_id, "team": spend_minutes.c.team_id, "model": spend_minutes.c.model}


class AccessStore:
    """All SQL of the access layer."""

    def __init__(self, engine: AsyncEngine, timeout_s: float = 5.0, breaker: Breaker | None = None) -> None:
        self.engine = engine
        self._timeout = timeout_s
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._insert = dialect.insert
        self.breaker = breaker or Breaker("database")
        self._probing: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def _tx(self, timeout: float | None = None) -> AsyncIterator[AsyncConnection]:
        if not self.breaker.up:
            self._start_probe()
            raise StoreUnavailableError("access database unavailable (down; retrying in the background)",
                                        retry_after=2)
        async with translated("access database", self._outage), asyncio.timeout(timeout or self._timeout), \
                self.engine.begin() as conn:
            yield conn
        self.breaker.success()

    def _outage(self, err: BaseException) -> None:
        if _unreachable(err):
            self.breaker.failure(err)

    def _start_probe(self) -> None:
        if self._probing is None and self.breaker.allow():
            self._probing = asyncio.create_task(self._probe())

    async def _probe(self) -> None:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except asyncio.CancelledError:
            self.breaker.release()
            raise
        except Exception as err:  # noqa: BLE001  (any failure: still down)
            self.breaker.failure(err)
        else:
            self.breaker.success()
        finally:
            self._probing = None

    async def probe(self) -> dict[str, Any]:
        """Readiness: the database's state; a ``SELECT 1`` only when nothing succeeded in the last
        ``PROBE_EVERY_S`` (probes are frequent and unauthenticated: they must not each cost a query)."""
        if self.breaker.seen_up_within(PROBE_EVERY_S):
            return self.breaker.report()
        if self.breaker.up:
            with suppress(StoreUnavailableError):
                async with self._tx(PROBE_TIMEOUT_S) as conn:
                    await conn.execute(text("SELECT 1"))
        else:
            self._start_probe()
        return self.breaker.report()

    async def close(self) -> None:
        """Stop the background probe (the engine is the replica's: app.wiring disposes it)."""
        await stop(self._probing)

    # keys and teams -------------------------------------------------------------------
    async def key_with_team(self, key_hash: str) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """The key record for a hash, and its team's, in one query."""
        t = teams.alias("t")
        cols = [*keys.c, *(c.label(f"team__{c.name}") for c in t.c)]
        stmt = select(*cols).select_from(keys.outerjoin(t, keys.c.team_id == t.c.team_id))
        async with self._tx() as conn:
            row = (await conn.execute(stmt.where(keys.c.key_hash == key_hash))).mappings().first()
        if row is None:
            return None
        key = {k: v for k, v in row.items() if not k.startswith("team__")}
        team = {k[6:]: v for k, v in row.items() if k.startswith("team__")}
        return key, team if team.get("team_id") else None

    async def insert(self, table: str, values: dict[str, Any]) -> None:
        async with self._tx() as conn:
            await conn.execute(insert(_table(table)).values(**values))

    async def get(self, table: str, ident: str, by: str | None = None) -> dict[str, Any] | None:
        tbl = _table(table)
        col = tbl.c[by or _pk(table)]
        async with self._tx() as conn:
            row = (await conn.execute(select(tbl).where(col == ident))).mappings().first()
        return _aware(row) if row else None

    async def update(self, table: str, ident: str, values: dict[str, Any]) -> dict[str, Any] | None:
        """Apply ``values`` and bump ``version``; the updated row, or ``None`` if absent."""
        tbl = _table(table)
        pk = tbl.c[_pk(table)]
        stmt = update(tbl).where(pk == ident).values(**values, version=tbl.c.version + 1, updated_at=now_utc())
        async with self._tx() as conn:
            if (await conn.execute(stmt)).rowcount == 0:
                return None
            row = (await conn.execute(select(tbl).where(pk == ident))).mappings().first()
        return _aware(row) if row else None

    async def delete(self, table: str, idents: list[str]) -> list[dict[str, Any]]:
        """Delete rows; returns those that existed (with their versions)."""
        tbl = _table(table)
        pk = tbl.c[_pk(table)]
        async with self._tx() as conn:
            rows = (await conn.execute(select(tbl).where(pk.in_(idents)))).mappings().all()
            await conn.execute(delete(tbl).where(pk.in_(idents)))
        return [_aware(r) for r in rows]

    async def page(
        self, table: str, where: dict[str, Any], offset: int, limit: int, tags: list[str] | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of rows equal to ``where`` (``None`` values ignored) and holding every tag."""
        tbl = _table(table)
        conds = [tbl.c[k] == v for k, v in where.items() if v is not None]
        conds += [_holds_tag(tbl.c.tags, t) for t in tags or ()]
        async with self._tx() as conn:
            total = (await conn.execute(select(func.count()).select_from(tbl).where(*conds))).scalar_one()
            stmt = select(tbl).where(*conds).order_by(tbl.c.created_at, tbl.c[_pk(table)]).offset(offset).limit(limit)
            rows = (await conn.execute(stmt)).mappings().all()
        return [_aware(r) for r in rows], int(total)

    async def team_key_ids(self, team_ids: list[str]) -> list[str]:
        async with self._tx() as conn:
            rows = await conn.execute(select(keys.c.key_id).where(keys.c.team_id.in_(team_ids)))
        return [r[0] for r in rows]

    # audit --------------------------------------------------------------------------------
    async def audit(self, actor: str, action: str, target: str | None, outcome: str, detail: Any = None) -> None:
        """Append an audit row; its target (often a client's query parameter) and detail are
        normalised to what the columns hold, so no input can make the audit write fail."""
        row = _AUDIT.row({"created_at": now_utc(), "actor": actor, "action": action, "target": target,
                          "outcome": outcome, "detail": detail})
        async with self._tx() as conn:
            await conn.execute(insert(audit_log), [row])

    async def audit_rows(self, start: datetime | None, end: datetime | None, limit: int) -> list[dict[str, Any]]:
        conds = _time_range(audit_log.c.created_at, start, end)
        stmt = select(audit_log).where(*conds).order_by(audit_log.c.id.desc()).limit(limit)
        async with self._tx() as conn:
            return [_aware(r) for r in (await conn.execute(stmt)).mappings()]

    # spend ---------------------------------------------------------------------------------
    async def write_spend(self, events: list[SpendEvent], timeout: float | None = None) -> int:
        """Insert per-request rows and add them to the per-minute aggregates, atomically.

        Idempotent: a batch retried after an unclear failure skips the rows it already
        wrote (``event_id`` conflict) and aggregates only the rows that were new.
        """
        rows = [e.row() for e in events]
        stmt = self._insert(spend_logs).on_conflict_do_nothing(index_elements=["event_id"])
        async with self._tx(timeout) as conn:
            inserted = {r[0] for r in await conn.execute(stmt.returning(spend_logs.c.event_id), rows)}
            aggregates = _aggregate(e for e in events if e.event_id in inserted)
            if aggregates:
                up = self._insert(spend_minutes)
                ex = up.excluded
                c = spend_minutes.c
                await conn.execute(up.on_conflict_do_update(
                    index_elements=["minute", "key_id", "model"],
                    set_={"requests": c.requests + ex.requests, "prompt_tokens": c.prompt_tokens + ex.prompt_tokens,
                          "completion_tokens": c.completion_tokens + ex.completion_tokens,
                          "cost": c.cost + ex.cost}), aggregates)
        return len(inserted)

    async def add_request_minutes(self, rows: list[dict[str, Any]], timeout: float | None = None) -> int:
        """Add per-minute request counts and latency buckets to ``request_minutes``, in one
        transaction (a row another replica or an earlier flush wrote is added to, not replaced).

        Not idempotent: a batch whose commit succeeded but whose reply was lost (a timeout
        at the very end) is kept and added again. That rare double count is the price of
        aggregating without a row per request.
        """
        up = self._insert(request_minutes)
        c, ex = request_minutes.c, up.excluded
        adds = ("requests", "latency_ms_sum", *COLUMNS)
        stmt = up.on_conflict_do_update(index_elements=["minute", "model", "endpoint", "status"],
                                        set_={k: c[k] + ex[k] for k in adds})
        async with self._tx(timeout) as conn:
            await conn.execute(stmt, rows)
        return len(rows)

    async def spend_since(self, column: str, ident: str, since: datetime | None, model: str | None = None) -> float:
        """Total cost of a key or team (``column``: key_id/team_id) since a time (on one model)."""
        col = spend_logs.c[column]
        stmt = select(func.coalesce(func.sum(spend_logs.c.cost), 0.0)).where(col == ident)
        if model is not None:
            stmt = stmt.where(spend_logs.c.model == model)
        if since is not None:
            stmt = stmt.where(spend_logs.c.created_at >= since)
        async with self._tx() as conn:
            return float((await conn.execute(stmt)).scalar_one())

    async def spend_report(self, group_by: str, filters: dict[str, Any], start: datetime | None,
                           end: datetime | None) -> list[dict[str, Any]]:
        """Spend per key, team or model over a time range (minute resolution)."""
        c = spend_minutes.c
        group = GROUPS[group_by]
        conds = [GROUPS[k] == v for k, v in filters.items() if v is not None]
        conds += _time_range(c.minute, start, end)
        stmt = (select(group.label(group_by), func.sum(c.requests).label("requests"),
                       func.sum(c.prompt_tokens).label("prompt_tokens"),
                       func.sum(c.completion_tokens).label("completion_tokens"), func.sum(c.cost).label("cost"))
                .where(*conds).group_by(group).order_by(func.sum(c.cost).desc()))
        async with self._tx() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        ints = ("requests", "prompt_tokens", "completion_tokens")
        out = [{**r, **{k: int(r[k]) for k in ints}, "cost": float(r["cost"])} for r in rows]
        return [{**r, "total_tokens": r["prompt_tokens"] + r["completion_tokens"]} for r in out]

    async def spend_logs(self, filters: dict[str, Any], start: datetime | None, end: datetime | None,
                         limit: int) -> list[dict[str, Any]]:
        c = spend_logs.c
        conds = [c[k] == v for k, v in filters.items() if v is not None]
        conds += _time_range(c.created_at, start, end)
        stmt = select(spend_logs).where(*conds).order_by(c.created_at.desc()).limit(limit)
        async with self._tx() as conn:
            return [_aware(r) for r in (await conn.execute(stmt)).mappings()]


def _unreachable(err: BaseException) -> bool:
    """A failure of the connection (trips the breaker), not of one statement: ``translated``
    reports no data error here, and a ``ProgrammingError`` is a bug, not an outage."""
    return is_read_only(err) or not isinstance(err, ProgrammingError)  # 25006: a demoted primary


def _aware(row: Any) -> dict[str, Any]:
    """A row as a plain dict: ``str`` keys (not ``quoted_name``), aware UTC times (SQLite's are naive)."""
    return {str(k): utc(v) if isinstance(v, datetime) else v for k, v in row.items()}


def _table(name: str) -> Any:
    return {"keys": keys, "teams": teams}[name]


def _pk(name: str) -> str:
    return {"keys": "key_id", "teams": "team_id"}[name]


def _holds_tag(col: Any, tag: str) -> Any:
    """Whether a JSON list column holds ``tag``: its text contains the tag as a JSON string.

    Both dialects keep the text SQLAlchemy wrote (``json.dumps``: the same escaping as
    here), and a JSON string in it cannot straddle two elements (its quotes would be
    escaped), so this is exact without JSONB or SQLite's JSON1 functions."""
    needle = json.dumps(tag).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return cast(col, Text).like(f"%{needle}%", escape="\\")


def _time_range(col: Any, start: datetime | None, end: datetime | None) -> list[Any]:
    conds = []
    if start is not None:
        conds.append(col >= start)
    if end is not None:
        conds.append(col < end)
    return conds


def _aggregate(events: Iterable[SpendEvent]) -> list[dict[str, Any]]:
    """Sum events per (minute, key, model), sorted by key so that concurrent writers
    from several replicas lock aggregate rows in the same order (no deadlock)."""
    acc: dict[tuple[datetime, str, str], dict[str, Any]] = {}
    for e in events:
        minute = utc(e.created_at).replace(second=0, microsecond=0)  # type: ignore[union-attr]
        row = acc.setdefault((minute, e.key_id, e.model), {
            "minute": minute, "key_id": e.key_id, "model": e.model, "team_id": e.team_id,
            "requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0})
        row["requests"] += 1
        row["prompt_tokens"] += e.prompt_tokens
        row["completion_tokens"] += e.completion_tokens
        row["cost"] += e.cost
    return [acc[k] for k in sorted(acc)]


__all__ = ["AccessStore", "SpendEvent", "StoreDataError", "StoreUnavailableError"]
