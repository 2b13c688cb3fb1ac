"""Spend read API (admin only): per key, team or model over a time range, request rows,
and the state of this replica's spend buffer.

Reports read the per-minute aggregates, so a range query scans minutes, not requests.
``start``/``end`` are ISO 8601 times (``end`` exclusive); spend still in a replica's
buffer (at most ~1 s, longer while the database is down) is not in them yet.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError

from app.access.keys import utc
from app.errors import InvalidRequestError
from app.routes.admin import admin_call, paging

router = APIRouter()
_TIME = TypeAdapter(datetime)


def time_range(request: Request) -> tuple[datetime | None, datetime | None]:
    out = []
    for name in ("start", "end"):
        raw = request.query_params.get(name)
        try:
            out.append(utc(_TIME.validate_python(raw)) if raw else None)
        except ValidationError:
            raise InvalidRequestError(f"{name}: expected an ISO 8601 time", param=name) from None
    return out[0], out[1]


async def _report(request: Request, group_by: str) -> Response:
    call = await admin_call(request, "spend.read")
    start, end = time_range(request)
    filters = {k: request.query_params.get(f"{k}_id" if k != "model" else k) for k in ("key", "team", "model")}
    rows = await call.admin.store.spend_report(group_by, filters, start, end)
    return call.reply({"group_by": group_by, "start": start, "end": end, "data": rows})


@router.get("/spend/keys")
async def spend_keys(request: Request) -> Response:
    return await _report(request, "key")


@router.get("/spend/teams")
async def spend_teams(request: Request) -> Response:
    return await _report(request, "team")


@router.get("/spend/models")
async def spend_models(request: Request) -> Response:
    return await _report(request, "model")


@router.get("/spend/logs")
async def spend_logs(request: Request) -> Response:
    call = await admin_call(request, "spend.read")
    start, end = time_range(request)
    q = request.query_params
    filters = {"key_id": q.get("key_id"), "team_id": q.get("team_id"), "model": q.get("model"),
               "request_id": q.get("request_id")}
    rows = await call.admin.store.spend_logs(filters, start, end, paging(request)[1])
    return call.reply({"data": rows})


@router.get("/spend/buffer")
async def spend_buffer(request: Request) -> Response:
    call = await admin_call(request, "spend.read")
    return call.reply(call.admin.policy.spend.stats.as_dict())
