"""Admin API: ``/key/*``, ``/team/*`` and ``/audit/log``, shaped like LiteLLM proxy's.

Only the master key or a key generated with ``admin: true`` may call it (403
otherwise, and the refusal is audited too). Every action, whatever its outcome, is
written to the audit log: actor, action, target, outcome, time. Handlers are thin:
``app.access.admin.AccessAdmin`` does the work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.access.admin import AccessAdmin
from app.access.policy import VirtualKeyPolicy
from app.auth import Principal
from app.errors import InvalidRequestError, PermissionDeniedError, RouteIQError
from app.http import id_header, json_response, read_json, request_id, validate
from app.schemas.admin import (
    KeyDeleteRequest,
    KeyGenerateRequest,
    KeyRef,
    KeyUpdateRequest,
    TeamDeleteRequest,
    TeamNewRequest,
    TeamUpdateRequest,
)

router = APIRouter()
T = TypeVar("T")
MAX_PAGE = 1000


@dataclass
class AdminCall:
    """An authenticated admin request: who, and the service to act with."""

    request: Request
    principal: Principal
    admin: AccessAdmin

    async def audited(self, action: str, target: str | None, op: Awaitable[T], detail: Any = None,
                      target_of: Callable[[T], str] | None = None) -> T:
        """Run ``op`` and record it in the audit log with its outcome."""
        try:
            result = await op
        except RouteIQError as err:
            await self.admin.store.audit(self.principal.key_id, action, target, err.code or err.type, detail)
            raise
        if target_of is not None:
            target = target_of(result)
        await self.admin.store.audit(self.principal.key_id, action, target, "success", detail)
        return result

    def reply(self, payload: Any) -> Response:
        return json_response(orjson.dumps(payload), id_header(self.request, {}))


async def admin_call(request: Request, action: str, *, admin_only: bool = True) -> AdminCall:
    """Authenticate an admin request (401/403), with the access service to use."""
    gateway = request.app.state.gateway
    request_id(request)  # on request.state and in the log context
    principal = await gateway.policy.authenticate(request.headers.get("authorization"))
    policy = gateway.policy
    if not isinstance(policy, VirtualKeyPolicy):
        raise InvalidRequestError("virtual keys are disabled (general_settings.access.enabled: false)")
    call = AdminCall(request, principal, AccessAdmin(policy))
    if admin_only and not principal.is_admin:
        await policy.store.audit(principal.key_id, action, None, "denied")
        raise PermissionDeniedError("only the master key or an admin key may call the admin API",
                                    code="admin_only")
    return call


def changes(body: Any, *skip: str) -> dict[str, Any]:
    """The fields a client actually sent (so an explicit null clears a limit)."""
    return {k: getattr(body, k) for k in body.model_fields_set if k not in skip}


def paging(request: Request) -> tuple[int, int]:
    try:
        page = max(1, int(request.query_params.get("page", 1)))
        size = min(MAX_PAGE, max(1, int(request.query_params.get("size", 100))))
    except ValueError:
        raise InvalidRequestError("page and size must be integers") from None
    return page, size


async def _body(request: Request, schema: Any) -> Any:
    return validate(schema, await read_json(request, 65536))


@router.post("/key/generate")
async def key_generate(request: Request) -> Response:
    call = await admin_call(request, "key.generate")
    body = await _body(request, KeyGenerateRequest)
    fields = changes(body)
    created = await call.audited("key.generate", None, call.admin.generate(fields, call.principal.key_id),
                                 _safe(fields), target_of=lambda r: r["key_id"])
    return call.reply(created)


@router.get("/key/info")
async def key_info(request: Request) -> Response:
    call = await admin_call(request, "key.info", admin_only=False)
    ref = request.query_params.get("key") or call.principal.key_id
    if not call.principal.is_admin:  # a key may read its own record, and only that
        if ref != call.principal.key_id and (await call.admin.find_key(ref))["key_id"] != call.principal.key_id:
            raise PermissionDeniedError("a non-admin key may only read its own info", code="admin_only")
        return call.reply(await call.admin.info(call.principal.key_id))
    return call.reply(await call.admin.info(ref))


@router.post("/key/update")
async def key_update(request: Request) -> Response:
    call = await admin_call(request, "key.update")
    body = await _body(request, KeyUpdateRequest)
    fields = changes(body, "key")
    target = (await call.admin.find_key(body.key))["key_id"]
    return call.reply(await call.audited("key.update", target, call.admin.update_key(target, fields), _safe(fields)))


async def _block(request: Request, blocked: bool) -> Response:
    action = "key.block" if blocked else "key.unblock"
    call = await admin_call(request, action)
    body = await _body(request, KeyRef)
    target = (await call.admin.find_key(body.key))["key_id"]
    return call.reply(await call.audited(action, target, call.admin.update_key(target, {"blocked": blocked})))


@router.post("/key/block")
async def key_block(request: Request) -> Response:
    return await _block(request, True)


@router.post("/key/unblock")
async def key_unblock(request: Request) -> Response:
    return await _block(request, False)


@router.post("/key/delete")
async def key_delete(request: Request) -> Response:
    call = await admin_call(request, "key.delete")
    body = await _body(request, KeyDeleteRequest)
    ids = [(await call.admin.find_key(k))["key_id"] for k in body.keys]
    deleted = await call.audited("key.delete", ",".join(ids)[:256], call.admin.delete_keys(ids))
    return call.reply({"deleted_keys": deleted})


@router.get("/key/list")
async def key_list(request: Request) -> Response:
    call = await admin_call(request, "key.list")
    page, size = paging(request)
    team = request.query_params.get("team_id")
    return call.reply(await call.audited("key.list", team, call.admin.list_keys(team, page, size)))


@router.post("/team/new")
async def team_new(request: Request) -> Response:
    call = await admin_call(request, "team.new")
    body = await _body(request, TeamNewRequest)
    fields = changes(body)
    created = await call.audited("team.new", body.team_id, call.admin.new_team(fields), _safe(fields),
                                 target_of=lambda r: r["team_id"])
    return call.reply(created)


@router.get("/team/info")
async def team_info(request: Request) -> Response:
    call = await admin_call(request, "team.info")
    team_id = request.query_params.get("team_id")
    if not team_id:
        raise InvalidRequestError("team_id is required", param="team_id")
    return call.reply(await call.admin.team_info(team_id))


@router.post("/team/update")
async def team_update(request: Request) -> Response:
    call = await admin_call(request, "team.update")
    body = await _body(request, TeamUpdateRequest)
    fields = changes(body, "team_id")
    return call.reply(await call.audited("team.update", body.team_id, call.admin.update_team(body.team_id, fields),
                                         _safe(fields)))


@router.post("/team/delete")
async def team_delete(request: Request) -> Response:
    call = await admin_call(request, "team.delete")
    body = await _body(request, TeamDeleteRequest)
    return call.reply(await call.audited("team.delete", ",".join(body.team_ids)[:256],
                                         call.admin.delete_teams(body.team_ids)))


@router.get("/team/list")
async def team_list(request: Request) -> Response:
    call = await admin_call(request, "team.list")
    page, size = paging(request)
    return call.reply(await call.admin.list_teams(page, size))


@router.get("/audit/log")
async def audit_log(request: Request) -> Response:
    from app.routes.spend import time_range

    call = await admin_call(request, "audit.read")
    start, end = time_range(request)
    limit = paging(request)[1]
    return call.reply({"data": await call.admin.store.audit_rows(start, end, limit)})


def _safe(fields: dict[str, Any]) -> dict[str, Any]:
    """Audit detail: the fields changed, JSON-ready (no secret is ever among them)."""
    return orjson.loads(orjson.dumps(fields))
