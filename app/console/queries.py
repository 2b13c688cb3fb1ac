"""What the console's charts and tables show, read from the tables the gateway already writes.

Three sources: ``routeiq_request_minutes`` (every request the ingress finished, routed or
not: count, status and a fixed-bucket latency histogram per minute, model and endpoint;
``app.access.request_stats``), ``routeiq_spend_minutes`` (tokens and cost of every request
a key made, per minute, key and model) and ``routeiq_decisions`` (each routed request:
router, λ, per-candidate scores, latency, status, fallback, feedback; the per-router
figures). Percentiles over time and per model are read from merged histogram buckets,
so they are exact to the bucket only (``app.access.latency_histogram``); per router they
come from the decision log's exact latencies. Rows are bucketed here, in Python, so the
same code serves Postgres and the embedded SQLite store. Must not: write anything.
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
from app.access.latency_histogram import COLUMNS, N_BUCKETS, quantile
from app.access.tables import decisions, request_minutes, spend_minutes

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

    async def request_minutes(self, start: datetime) -> list[dict[str, Any]]:
        """Per minute, model and status: requests and latency bucket counts (all endpoints)."""
        c = request_minutes.c
        cols = (c.minute, c.model, c.status)
        stmt = (select(*cols, func.sum(c.requests).label("requests"), *[func.sum(c[b]).label(b) for b in COLUMNS])
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
        counted = await self.request_minutes(window.start)
        rows = await self.decisions(window.start)
        report = {"bucket_s": window.bucket_s, "start": window.start.isoformat(),
                  "decisions_capped": len(rows) >= MAX_DECISIONS, **traffic(spend, window),
                  **requests(counted, window), **routed(rows, window)}
        return {**report, "by_model": by_model(report.pop("by_model"), report.pop("requests_by_model"))}

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


class _Tally:
    """Requests, errors and merged latency buckets of a slot or a model."""

    def __init__(self) -> None:
        self.requests = self.errors = 0
        self.buckets = [0] * N_BUCKETS

    def add(self, row: dict[str, Any]) -> None:
        n = int(row["requests"])
        self.requests += n
        self.errors += n if int(row["status"]) >= 400 else 0
        self.buckets = [a + int(row[b] or 0) for a, b in zip(self.buckets, COLUMNS, strict=True)]

    def pct(self, q: float) -> float | None:
        """A percentile in ms, to the bucket's resolution (``latency_histogram.quantile``)."""
        value = quantile(self.buckets, q)
        return round(value, 1) if value is not None else None

    def summary(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": self.errors, "p50_ms": self.pct(0.5), "p95_ms": self.pct(0.95)}


def requests(rows: list[dict[str, Any]], window: Window) -> dict[str, Any]:
    """Every finished request over time and per model: count, errors (status >= 400), p50/p95.

    Percentiles come from the merged fixed buckets: exact to the bucket only (each bound
    at most 5/3 of the one below), which is what makes replicas' and minutes' counts addable.
    """
    slots: dict[int, _Tally] = defaultdict(_Tally)
    models: dict[str, _Tally] = defaultdict(_Tally)
    total = _Tally()
    for r in rows:
        for into in (slots[window.slot(r["minute"])], models[str(r["model"])], total):
            into.add(r)
    t = sorted(slots)
    series = {"t": t, "requests": [slots[s].requests for s in t], "errors": [slots[s].errors for s in t],
              "p50": [slots[s].pct(0.5) for s in t], "p95": [slots[s].pct(0.95) for s in t]}
    return {"requests": series, "request_totals": total.summary(),
            "requests_by_model": {m: v.summary() for m, v in models.items()}}


def by_model(spend: list[dict[str, Any]], counted: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model: requests, errors, p50/p95 (every request) next to tokens and cost (keys' spend)."""
    tokens = {m["model"]: m for m in spend}
    out = []
    for name in set(tokens) | set(counted):
        c = counted.get(name) or {"requests": 0, "errors": 0, "p50_ms": None, "p95_ms": None}
        s = tokens.get(name) or {"tokens": 0, "cost": 0.0}
        out.append({"model": name, **c, "tokens": s["tokens"], "cost": s["cost"]})
    return sorted(out, key=lambda m: (-m["requests"], m["model"]))


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
