"""SQL of the routing decision log (``routeiq_decisions``), and its JSONL export.

The same ``AsyncEngine`` (Postgres or the embedded SQLite file) and migrations as the
access layer. Foreign errors become ``StoreUnavailableError`` (an outage) or
``StoreDataError`` (a refused value: ``app.access.dberrors``) here, the one place the
table is queried, and every call has a deadline. Rows are keyed by request id, so a
batch retried after an unclear failure inserts nothing twice. ``decision_row``
normalises a record once, when it is queued (``app.access.normalise``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TextIO

import orjson
from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.access.dberrors import translated
from app.access.keys import utc
from app.access.normalise import Normaliser
from app.access.tables import decisions
from app.config import DecisionLogSettings
from app.gateway.decisions import DecisionRecord

PAGE = 1000
_ROW = Normaliser(decisions)
EXPORT_FIELDS = (
    "request_id", "created_at", "key_id", "router", "strategy", "lambda", "query", "query_sha256", "query_chars",
    "candidates", "chosen", "routed_to", "route_latency_ms", "latency_ms", "prompt_tokens", "completion_tokens",
    "cost", "status", "fallback", "feedback", "feedback_at", "usage_estimated", "propensity", "explored",
    "policy",
)
"""The JSONL fields, in order (docs/observability.md documents each)."""


class Feedback(Enum):
    SAVED = "saved"
    MISSING = "missing"
    """No such request id (or not yet written)."""
    AMBIGUOUS = "ambiguous"
    """An admin rated a request id several keys sent (say which with ``key_id``)."""


def decision_row(record: DecisionRecord, settings: DecisionLogSettings) -> dict[str, Any]:
    """The table row of a record: the query truncated (or only hashed), times as UTC, every
    value normalised to what its column holds (no NaN, NUL, lone surrogate or overlong id)."""
    query = record.query
    return _ROW.row({
        "request_id": record.request_id, "created_at": datetime.fromtimestamp(record.created_at, UTC),
        "key_id": record.key_id, "router": record.router, "strategy": record.strategy, "lam": record.lam,
        "query": query[: settings.query_max_chars] if settings.store_query == "text" else None,
        "query_sha256": hashlib.sha256(query.encode("utf-8", "surrogatepass")).hexdigest(),
        "query_chars": len(query), "candidates": dict(record.candidates), "chosen": record.chosen,
        "routed_to": record.routed_to, "route_latency_ms": record.route_latency_ms, "latency_ms": record.latency_ms,
        "prompt_tokens": record.prompt_tokens, "completion_tokens": record.completion_tokens, "cost": record.cost,
        "status": record.status, "fallback": record.fallback, "feedback": None, "feedback_at": None,
        "usage_estimated": record.usage_estimated, "propensity": record.propensity, "explored": record.explored,
        "policy": dict(record.policy) if record.policy is not None else None,
    })


class DecisionStore:
    def __init__(self, engine: AsyncEngine, timeout_s: float = 5.0) -> None:
        self.engine = engine
        self._timeout = timeout_s
        self._insert = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        async with translated("decision database"), asyncio.timeout(self._timeout), self.engine.begin() as conn:
            yield conn

    async def write(self, rows: list[dict[str, Any]]) -> int:
        """Insert rows (skipping (request id, key) pairs already there); feedback given while
        buffered is kept. Rows are keyed by both: a client-chosen request id is its own."""
        stmt = self._insert(decisions).on_conflict_do_nothing(index_elements=["request_id", "key_id"])
        rated = [r for r in rows if r["feedback"] is not None]
        c = decisions.c
        async with self._tx() as conn:
            inserted = len(list(await conn.execute(stmt.returning(c.request_id), rows)))
            for r in rated:  # rows an earlier, unclear attempt wrote without their feedback
                await conn.execute(update(decisions).where(c.request_id == r["request_id"], c.key_id == r["key_id"])
                                   .values(feedback=r["feedback"], feedback_at=r["feedback_at"]))
        return inserted

    async def set_feedback(self, request_id: str, score: float, key_id: str | None) -> Feedback:
        """Store a score on a written row of ``key_id`` (``None``: any key, for admins).

        Another key's row and no row are the same answer, ``MISSING``, found the same way
        (one indexed lookup), so request ids of other keys cannot be probed.
        """
        c = decisions.c
        match = [c.request_id == request_id] + ([c.key_id == key_id] if key_id is not None else [])
        async with self._tx() as conn:
            owners = (await conn.execute(select(c.key_id).where(*match).limit(2))).scalars().all()
            if not owners:
                return Feedback.MISSING
            if len(owners) > 1:
                return Feedback.AMBIGUOUS
            await conn.execute(update(decisions).where(c.request_id == request_id, c.key_id == owners[0])
                               .values(feedback=score, feedback_at=datetime.now(UTC)))
        return Feedback.SAVED

    async def rows(self, since: datetime | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every row from ``since`` on, oldest first, read in pages (keyset, not OFFSET)."""
        c = decisions.c
        after: tuple[datetime, str] | None = None
        while True:
            stmt = select(decisions).order_by(c.created_at, c.request_id).limit(PAGE)
            if since is not None:
                stmt = stmt.where(c.created_at >= since)
            if after is not None:
                stmt = stmt.where(or_(c.created_at > after[0], and_(c.created_at == after[0],
                                                                     c.request_id > after[1])))
            async with self._tx() as conn:
                page = (await conn.execute(stmt)).mappings().all()
            for row in page:
                yield export_record(row)
            if len(page) < PAGE:
                return
            after = (page[-1]["created_at"], page[-1]["request_id"])


def export_record(row: Any) -> dict[str, Any]:
    """A table row as one JSONL object (``lam`` is written ``lambda``; times ISO 8601 UTC)."""
    out = {("lambda" if k == "lam" else str(k)): v for k, v in dict(row).items()}
    for k in ("created_at", "feedback_at"):
        if out.get(k) is not None:
            out[k] = utc(out[k]).isoformat()  # type: ignore[union-attr]
    return {k: out.get(k) for k in EXPORT_FIELDS}


def training_record(rec: dict[str, Any]) -> dict[str, Any] | None:
    """The training-data form (``{"query", "scores"}``) of an exported row with feedback.

    ``propensity`` is the routing policy's probability of the model that answered, for
    inverse-propensity weighting; ``null`` when a provider fallback answered instead of
    the routed model (the policy did not choose it) or the row predates propensities."""
    if rec.get("feedback") is None or not rec.get("query") or rec.get("status") != 200:
        return None
    propensity = rec.get("propensity") if rec.get("chosen") == rec.get("routed_to") else None
    return {"query": rec["query"], "scores": {rec["chosen"]: float(rec["feedback"])}, "propensity": propensity}


async def export_jsonl(store: DecisionStore, out: TextIO, since: datetime | None = None,
                       training: bool = False) -> int:
    """Write rows as JSON lines (or their training form); returns the lines written."""
    n = 0
    async for rec in store.rows(since):
        line = training_record(rec) if training else rec
        if line is not None:
            out.write(orjson.dumps(line).decode() + "\n")
            n += 1
    return n
