"""What the console's charts and tables show, read from the tables the gateway already writes.

Two sources: ``routeiq_spend_minutes`` (requests, tokens and cost of every request a key
made, per minute, key and model) and ``routeiq_decisions`` (each routed request: router,
λ, per-candidate scores, latency, status, fallback, feedback). Latency and errors exist
only in the decision log, so the console's latency and error figures are those of
routed requests, and it says so. Rows are bucketed here, in Python, so the same code
serves Postgres and the embedded SQLite store. Must not: write anything.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.access.dberrors import translated
from app.access.keys import utc
from app.access.tables import decisions, spend_minutes

RANGES_H = {1: 60, 6: 300, 24: 900, 168: 3600}
"""The time ranges the console offers (hours) and their chart bucket (seconds)."""
MAX_DECISIONS = 20_000
"""Decision rows read per chart: the newest ones of the range (the console says when capped)."""
RECENT = 10
LAMBDA_BINS = 12


@dataclass(frozen=True)
class Window:
    start: datetime
    bucket_s: int

    @classmethod
    def last(cls, hours: int, now: datetime | None = None) -> Window:
        bucket = RANGES_H.get(hours, 60)
        end = now or datetime.now(UTC)
        start = end - timedelta(hours=hours if hours in RANGES_H else 1)
        return cls(start, bucket)

    def slot(self, at: datetime) -> int:
        return int(utc(at).timestamp()) // self.bucket_s * self.bucket_s  # type: ignore[union-attr]


class ConsoleQueries:
    """Read-only SQL behind the console pages, on the access database's engine."""

    def __init__(self, engine: AsyncEngine, timeout_s: float = 10.0) -> None:
        self.engine = engine
        self._timeout = timeout_s

    async def _rows(self, stmt: Any) -> list[dict[str, Any]]:
        async with translated("access database"), asyncio.timeout(self._timeout), self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(stmt)).mappings()]

    async def spend_minutes(self, start: datetime, group: Any = None) -> list[dict[str, Any]]:
        """Per minute (and ``group``, a column of ``spend_minutes``): requests, tokens, cost."""
        c = spend_minutes.c
        cols = [c.minute] + ([group] if group is not None else [])
        stmt = (select(*cols, func.sum(c.requests).label("requests"),
                       func.sum(c.prompt_tokens + c.completion_tokens).label("tokens"),
                       func.sum(c.cost).label("cost"))
                .where(c.minute >= start).group_by(*cols))
        return await self._rows(stmt)

    async def decisions(self, start: datetime, limit: int = MAX_DECISIONS) -> list[dict[str, Any]]:
        c = decisions.c
        stmt = (select(c.request_id, c.created_at, c.key_id, c.router, c.strategy, c.lam, c.candidates, c.chosen,
                       c.routed_to, c.latency_ms, c.route_latency_ms, c.status, c.fallback, c.feedback, c.cost,
                       c.explored)
                .where(c.created_at >= start).order_by(c.created_at.desc()).limit(limit))
        return await self._rows(stmt)

    async def overview(self, window: Window) -> dict[str, Any]:
        spend = await self.spend_minutes(window.start, spend_minutes.c.model)
        rows = await self.decisions(window.start)
        return {"bucket_s": window.bucket_s, "start": window.start.isoformat(),
                "decisions_capped": len(rows) >= MAX_DECISIONS, **traffic(spend, window), **routed(rows, window)}

    async def spend_by_day(self, start: datetime, group: str | None) -> list[dict[str, Any]]:
        """Per UTC day (and key, team or model): requests, tokens and cost."""
        column = {"key": spend_minutes.c.key_id, "team": spend_minutes.c.team_id,
                  "model": spend_minutes.c.model}.get(group or "")
        out: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for r in await self.spend_minutes(start, column):
            day = utc(r["minute"]).date().isoformat()  # type: ignore[union-attr]
            name = str(r.get(column.name) if column is not None else "") if column is not None else ""
            out[(day, name)].update(requests=int(r["requests"]), tokens=int(r["tokens"]))
            out[(day, name)]["cost"] += float(r["cost"])  # type: ignore[assignment]
        return [{"day": day, **({group: name} if group else {}), "requests": v["requests"],
                 "tokens": v["tokens"], "cost": float(v["cost"])} for (day, name), v in sorted(out.items())]


def traffic(spend: list[dict[str, Any]], window: Window) -> dict[str, Any]:
    """Requests, tokens and cost over time (all models, and per model)."""
    slots: dict[int, Counter[str]] = defaultdict(Counter)
    models: dict[str, Counter[str]] = defaultdict(Counter)
    for r in spend:
        for into in (slots[window.slot(r["minute"])], models[str(r["model"])]):
            into.update(requests=int(r["requests"]), tokens=int(r["tokens"]))
            into["cost"] += float(r["cost"])  # type: ignore[assignment]
    t = sorted(slots)
    series = {"t": t, **{k: [float(slots[s][k]) for s in t] for k in ("requests", "tokens", "cost")}}
    totals = {k: float(sum(m[k] for m in models.values())) for k in ("requests", "tokens", "cost")}
    per_model = [{"model": m, "requests": int(v["requests"]), "tokens": int(v["tokens"]), "cost": float(v["cost"])}
                 for m, v in sorted(models.items(), key=lambda kv: -kv[1]["requests"])]
    return {"traffic": series, "totals": totals, "by_model": per_model}


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def routed(rows: list[dict[str, Any]], window: Window) -> dict[str, Any]:
    """Routed requests over time: errors, p50/p95 latency; per router: counts, fallbacks."""
    slots: dict[int, list[dict[str, Any]]] = defaultdict(list)
    routers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        slots[window.slot(r["created_at"])].append(r)
        routers[str(r["router"])].append(r)
    t = sorted(slots)
    lat = {s: [float(r["latency_ms"]) for r in slots[s]] for s in t}
    series = {"t": t, "requests": [len(slots[s]) for s in t],
              "errors": [sum(int(r["status"]) >= 400 for r in slots[s]) for s in t],
              "p50": [_pct(lat[s], 50) for s in t], "p95": [_pct(lat[s], 95) for s in t]}
    all_lat = [float(r["latency_ms"]) for r in rows]
    per_router = [{"router": name, "requests": len(rs), "errors": sum(int(r["status"]) >= 400 for r in rs),
                   "fallbacks": sum(bool(r["fallback"]) for r in rs),
                   "p50_ms": _pct([float(r["latency_ms"]) for r in rs], 50),
                   "p95_ms": _pct([float(r["latency_ms"]) for r in rs], 95)} for name, rs in sorted(routers.items())]
    summary = {"requests": len(rows), "errors": sum(int(r["status"]) >= 400 for r in rows),
               "fallbacks": sum(bool(r["fallback"]) for r in rows), "p50_ms": _pct(all_lat, 50),
               "p95_ms": _pct(all_lat, 95)}
    return {"routed": series, "routed_totals": summary, "by_router": per_router}


def router_detail(name: str, rows: list[dict[str, Any]], window: Window) -> dict[str, Any]:
    """One router's share of traffic per model over time, λ histogram and recent decisions."""
    mine = [r for r in rows if r["router"] == name]
    slots: dict[int, Counter[str]] = defaultdict(Counter)
    for r in mine:
        slots[window.slot(r["created_at"])][str(r["routed_to"])] += 1
    t = sorted(slots)
    models = sorted({m for c in slots.values() for m in c})
    share = {m: [round(slots[s][m] / max(1, sum(slots[s].values())), 4) for s in t] for m in models}
    lams = [float(r["lam"]) for r in mine if r["lam"] is not None]
    hist: dict[str, Any] = {"centres": [], "counts": []}
    if lams:
        lo, hi = min(lams), max(lams)
        span = (lo, hi) if hi > lo else (lo - 0.05, lo + 0.05)  # one λ: one bar centred on it
        counts, edges = np.histogram(lams, bins=LAMBDA_BINS if hi > lo else 1, range=span)
        centres = (edges[:-1] + edges[1:]) / 2
        hist = {"centres": [round(float(e), 4) for e in centres], "counts": [int(c) for c in counts]}
    recent = [{**{k: r[k] for k in ("request_id", "chosen", "routed_to", "lam", "candidates", "feedback",
                                    "latency_ms", "status", "fallback", "explored")},
               "created_at": utc(r["created_at"]).isoformat()}  # type: ignore[union-attr]
              for r in mine[:RECENT]]
    rated = [float(r["feedback"]) for r in mine if r["feedback"] is not None]
    chosen = Counter(str(r["routed_to"]) for r in mine)
    return {"share": {"t": t, "models": share}, "lambda": hist, "recent": recent, "requests": len(mine),
            "chosen": dict(chosen), "feedback_mean": round(sum(rated) / len(rated), 4) if rated else None,
            "feedback_n": len(rated)}
