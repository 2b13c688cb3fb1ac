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

from app.access.keys import hash_key
from app.access.policy import VirtualKeyPolicy
from app.deps import Admin, AdminCall, PageDep, TimeRangeDep, litellm_date
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
    """Request rows, newest first. Also LiteLLM's filters: ``api_key`` (the key, or its
    SHA-256 hash as LiteLLM's ``token``), ``user_id``, ``start_date``/``end_date``."""
    filters = {name: query_text(request, name) for name in ("key_id", "team_id", "model", "request_id", "user_id")}
    if (api_key := query_text(request, "api_key")) is not None:
        found = await call.admin.store.get("keys", hash_key(api_key) if api_key.startswith("sk-") else api_key,
                                           by="key_hash")
        if found is None or filters["key_id"] not in (None, found["key_id"]):
            return call.reply({"data": []})  # no such key: nothing it spent (as LiteLLM's filter)
        filters["key_id"] = found["key_id"]
    start, end = window.start, window.end
    if (first := litellm_date(request, "start_date")) is not None:
        start = max(start, first) if start else first
    if (last := litellm_date(request, "end_date", end_of_day=True)) is not None:
        end = min(end, last) if end else last
    return call.reply({"data": await call.admin.store.spend_logs(filters, start, end, page.size)})


@router.get("/spend/buffer")
async def spend_buffer(call: SpendCall) -> Response:
    policy: VirtualKeyPolicy = call.admin.policy
    return call.reply(policy.spend.stats.as_dict())
