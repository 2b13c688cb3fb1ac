"""Spend read API (admin only): per key, team or model over a time range, request rows,
and the state of this replica's spend buffer.

Reports read the per-minute aggregates, so a range query scans minutes, not requests.
``start``/``end`` are ISO 8601 times (``end`` exclusive); spend still in a replica's
buffer (at most ~1 s, longer while the database is down) is not in them yet.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.access.policy import VirtualKeyPolicy
from app.deps import Admin, AdminCall, PageDep, TimeRangeDep
from app.http import query_text

router = APIRouter()
SpendCall = Annotated[AdminCall, Admin("spend.read")]


async def _report(request: Request, call: AdminCall, window: TimeRangeDep, group_by: str) -> Response:
    filters = {k: query_text(request, f"{k}_id" if k != "model" else k) for k in ("key", "team", "model")}
    rows = await call.admin.store.spend_report(group_by, filters, window.start, window.end)
    return call.reply({"group_by": group_by, "start": window.start, "end": window.end, "data": rows})


@router.get("/spend/keys")
async def spend_keys(request: Request, call: SpendCall, window: TimeRangeDep) -> Response:
    return await _report(request, call, window, "key")


@router.get("/spend/teams")
async def spend_teams(request: Request, call: SpendCall, window: TimeRangeDep) -> Response:
    return await _report(request, call, window, "team")


@router.get("/spend/models")
async def spend_models(request: Request, call: SpendCall, window: TimeRangeDep) -> Response:
    return await _report(request, call, window, "model")


@router.get("/spend/logs")
async def spend_logs(request: Request, call: SpendCall, window: TimeRangeDep, page: PageDep) -> Response:
    filters = {name: query_text(request, name) for name in ("key_id", "team_id", "model", "request_id")}
    return call.reply({"data": await call.admin.store.spend_logs(filters, window.start, window.end, page.size)})


@router.get("/spend/buffer")
async def spend_buffer(call: SpendCall) -> Response:
    policy: VirtualKeyPolicy = call.admin.policy
    return call.reply(policy.spend.stats.as_dict())
