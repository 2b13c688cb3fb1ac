"""Admin API: ``/key/*``, ``/team/*`` and ``/audit/log``, shaped like LiteLLM proxy's.

Only the master key or a key generated with ``admin: true`` may call it (403
otherwise, and the refusal is audited too). Every action, reads included, whatever its
outcome, is written to the audit log: actor, action, target, outcome, time (a read of
``/audit/log`` is itself an ``audit.read`` row). A raw key sent as a reference is never
written: the target is the key id. Handlers are thin:
``app.access.admin.AccessAdmin`` does the work.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.auth import api_credential, bearer_token
from app.deps import Admin, AdminCall, PageDep, TimeRangeDep
from app.errors import InvalidRequestError, NotFoundError
from app.http import query_text, read_json, validate
from app.schemas.admin import (
    KeyDeleteRequest,
    KeyGenerateRequest,
    KeyRefRequest,
    KeyRegenerateRequest,
    KeyUpdateRequest,
    TeamDeleteRequest,
    TeamNewRequest,
    TeamUpdateRequest,
)

router = APIRouter()


def changes(body: Any, *skip: str) -> dict[str, Any]:
    """The fields a client actually sent (so an explicit null clears a limit), nested
    models as plain dicts (the JSON columns store them)."""
    fields: dict[str, Any] = body.model_dump(include=body.model_fields_set - set(skip))
    return fields


async def _body(request: Request, schema: Any) -> Any:
    return validate(schema, await read_json(request, 65536))


@router.post("/key/generate")
async def key_generate(request: Request, call: Annotated[AdminCall, Admin("key.generate")]) -> Response:
    body = await _body(request, KeyGenerateRequest)
    fields = changes(body)
    created = await call.audited("key.generate", None, call.admin.generate(fields, call.principal.key_id),
                                 _safe(fields), target_of=lambda r: r["key_id"])
    return call.reply(created)


@router.get("/key/info")
async def key_info(request: Request, call: Annotated[AdminCall, Admin("key.info", admin_only=False)]) -> Response:
    ref = query_text(request, "key") or call.principal.key_id
    if not call.principal.is_admin:
        # A key reads its own record, and only that. Any other reference is "no such key"
        # without a lookup, exactly like a key that does not exist: ids are not probeable.
        own = (call.principal.key_id, bearer_token(api_credential(request.headers)))
        if ref not in own:
            raise NotFoundError("no such key", param="key", code="key_not_found")
        ref = call.principal.key_id
    target = ref if not ref.startswith("sk-") else None  # never a raw key in the audit log
    return call.reply(await call.audited("key.info", target, call.admin.info(ref),
                                         target_of=lambda r: str(r["key_id"])))


@router.post("/key/update")
async def key_update(request: Request, call: Annotated[AdminCall, Admin("key.update")]) -> Response:
    body = await _body(request, KeyUpdateRequest)
    fields = changes(body, "key")
    target = (await call.admin.find_key(body.key))["key_id"]
    return call.reply(await call.audited("key.update", target, call.admin.update_key(target, fields), _safe(fields)))


async def _block(request: Request, call: AdminCall, action: str, blocked: bool) -> Response:
    body = await _body(request, KeyRefRequest)
    target = (await call.admin.find_key(body.key))["key_id"]
    return call.reply(await call.audited(action, target, call.admin.update_key(target, {"blocked": blocked})))


@router.post("/key/block")
async def key_block(request: Request, call: Annotated[AdminCall, Admin("key.block")]) -> Response:
    return await _block(request, call, "key.block", True)


@router.post("/key/unblock")
async def key_unblock(request: Request, call: Annotated[AdminCall, Admin("key.unblock")]) -> Response:
    return await _block(request, call, "key.unblock", False)


@router.post("/key/delete")
async def key_delete(request: Request, call: Annotated[AdminCall, Admin("key.delete")]) -> Response:
    body = await _body(request, KeyDeleteRequest)
    ids = [(await call.admin.find_key(k))["key_id"] for k in body.keys]
    deleted = await call.audited("key.delete", ",".join(ids)[:256], call.admin.delete_keys(ids))
    return call.reply({"deleted_keys": deleted})


@router.post("/key/regenerate")
async def key_regenerate(request: Request, call: Annotated[AdminCall, Admin("key.regenerate")]) -> Response:
    return await _regenerate(request, call, None)


@router.post("/key/{key}/regenerate")
async def key_regenerate_path(key: str, request: Request,
                              call: Annotated[AdminCall, Admin("key.regenerate")]) -> Response:
    return await _regenerate(request, call, validate(KeyRefRequest, {"key": key}).key)


async def _regenerate(request: Request, call: AdminCall, path_key: str | None) -> Response:
    """LiteLLM's ``/key/regenerate`` (the key in the body) and ``/key/{key}/regenerate``; an
    empty body is fine for the latter."""
    body = validate(KeyRegenerateRequest, await read_json(request, 65536, empty_ok=True))
    ref = path_key or body.key
    if ref is None:
        raise InvalidRequestError("key is required (in the body or the path)", param="key")
    target = (await call.admin.find_key(ref))["key_id"]
    return call.reply(await call.audited("key.regenerate", target, call.admin.regenerate(target, body.new_key)))


@router.get("/key/list")
async def key_list(request: Request, call: Annotated[AdminCall, Admin("key.list")], page: PageDep) -> Response:
    filters = {name: query_text(request, name) for name in ("team_id", "user_id", "key_alias")}
    tags = [t for raw in request.query_params.getlist("tags") for t in raw.split(",") if t]
    if len(tags) > 32 or any(len(t) > 256 or "\x00" in t for t in tags):
        raise InvalidRequestError("Invalid value for 'tags': at most 32 tags of 256 characters, no NUL", param="tags")
    listed = call.admin.list_keys(filters, tags, page.page, page.size)
    return call.reply(await call.audited("key.list", filters["team_id"], listed))


@router.post("/team/new")
async def team_new(request: Request, call: Annotated[AdminCall, Admin("team.new")]) -> Response:
    body = await _body(request, TeamNewRequest)
    fields = changes(body)
    created = await call.audited("team.new", body.team_id, call.admin.new_team(fields), _safe(fields),
                                 target_of=lambda r: r["team_id"])
    return call.reply(created)


@router.get("/team/info")
async def team_info(request: Request, call: Annotated[AdminCall, Admin("team.info")]) -> Response:
    team_id = query_text(request, "team_id")
    if not team_id:
        raise InvalidRequestError("team_id is required", param="team_id")
    return call.reply(await call.audited("team.info", team_id, call.admin.team_info(team_id)))


@router.post("/team/update")
async def team_update(request: Request, call: Annotated[AdminCall, Admin("team.update")]) -> Response:
    body = await _body(request, TeamUpdateRequest)
    fields = changes(body, "team_id")
    return call.reply(await call.audited("team.update", body.team_id, call.admin.update_team(body.team_id, fields),
                                         _safe(fields)))


@router.post("/team/delete")
async def team_delete(request: Request, call: Annotated[AdminCall, Admin("team.delete")]) -> Response:
    body = await _body(request, TeamDeleteRequest)
    return call.reply(await call.audited("team.delete", ",".join(body.team_ids)[:256],
                                         call.admin.delete_teams(body.team_ids)))


@router.get("/team/list")
async def team_list(call: Annotated[AdminCall, Admin("team.list")], page: PageDep) -> Response:
    return call.reply(await call.audited("team.list", None, call.admin.list_teams(page.page, page.size)))


@router.get("/audit/log")
async def audit_log(call: Annotated[AdminCall, Admin("audit.read")], window: TimeRangeDep, page: PageDep) -> Response:
    rows = call.admin.store.audit_rows(window.start, window.end, page.size)
    return call.reply({"data": await call.audited("audit.read", None, rows)})


def _safe(fields: dict[str, Any]) -> dict[str, Any]:
    """Audit detail: the fields changed, JSON-ready (no secret is ever among them)."""
    safe: dict[str, Any] = orjson.loads(orjson.dumps(fields))
    return safe
