"""``/ui/api/*``: the console's JSON, and its mutations (CSRF-checked), for its pages' JS.

Reads go through ``ConsoleQueries`` (charts) and the admin logic (``AccessAdmin``: keys,
teams, spend in the budget window); every mutation is the admin API's own operation,
audited with the admin API's action names. Each handler is thin.
"""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.access.admin import AccessAdmin
from app.access.policy import VirtualKeyPolicy
from app.console.curve import curve, read_manifest
from app.console.operator import Operator, current
from app.console.queries import ConsoleQueries, Window, router_detail
from app.console.registry import RegistryPanel
from app.deps import AdminCall, GatewayDep
from app.errors import InvalidRequestError
from app.gateway import Gateway
from app.http import json_response, query_text, read_json, validate
from app.routes.admin import changes
from app.routes.health import readiness_report
from app.schemas.admin import KeyGenerateRequest, TeamNewRequest

router = APIRouter(prefix="/ui/api")
KEY_ACTIONS = ("block", "unblock", "regenerate", "delete")
SEARCH_SCAN = 1000
"""Keys a search looks through (the newest first page of the store); the console says so."""
SHOWN = 50


async def _reader(request: Request, gateway: GatewayDep) -> Operator:
    return await current(gateway, request, mutating=False)


async def _writer(request: Request, gateway: GatewayDep) -> Operator:
    return await current(gateway, request, mutating=True)


Reader = Annotated[Operator, Depends(_reader)]
Writer = Annotated[Operator, Depends(_writer)]


def _reply(payload: Any) -> Response:
    return json_response(orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS), {"cache-control": "no-store"})


def _policy(gateway: Gateway) -> VirtualKeyPolicy:
    if not isinstance(policy := gateway.policy, VirtualKeyPolicy):
        raise InvalidRequestError("virtual keys are disabled (general_settings.access.enabled: false)")
    return policy


def _queries(gateway: Gateway) -> ConsoleQueries:
    return ConsoleQueries(_policy(gateway).store.engine)


def _hours(request: Request) -> int:
    raw = request.query_params.get("hours", "1")
    if raw not in ("1", "6", "24", "168"):
        raise InvalidRequestError("hours: one of 1, 6, 24, 168", param="hours")
    return int(raw)


@router.get("/overview")
async def overview(request: Request, op: Reader, gateway: GatewayDep) -> Response:
    report = await _queries(gateway).overview(Window.last(_hours(request)))
    cooling = sorted({gateway.cfg.model_list[i].model_name for i in gateway.cooldowns.cooling()})
    return _reply({**report, "cooling": cooling, "operator": op.principal.key_id})


@router.get("/routing")
async def routing(request: Request, op: Reader, gateway: GatewayDep) -> Response:
    window = Window.last(_hours(request))
    # An alias (``auto:cost``) is its router with another λ: its decisions are the router's.
    aliases = {name: a.router for name, a in gateway.cfg.router_settings.aliases.items()}
    rows = [{**r, "router": aliases.get(r["router"], r["router"])}
            for r in await _queries(gateway).decisions(window.start)]
    info = await gateway.router_info.report()
    out = []
    for name, loaded in info["routers"].items():
        detail = router_detail(name, rows, window)
        manifest = read_manifest(loaded.get("artifact")) or read_manifest(loaded.get("source"))
        picture = curve(manifest, detail["chosen"], detail["feedback_mean"]) if manifest else None
        out.append({"name": name, "loaded": loaded, "curve": picture, **detail})
    return _reply({"bucket_s": window.bucket_s, "routers": out, "scorer_error": info.get("scorer_error"),
                   "registry_routers": sorted(RegistryPanel(gateway.cfg).urls)})


@router.get("/registry/{name}")
async def registry(name: str, op: Reader, gateway: GatewayDep) -> Response:
    return _reply(await RegistryPanel(gateway.cfg).describe(name))


@router.post("/registry/{name}/{action}")
async def registry_move(name: str, action: str, request: Request, op: Writer, gateway: GatewayDep) -> Response:
    """Promote (body ``{"version": "v3"}``) or roll back; audited as ``router.promote``/``router.rollback``."""
    panel = RegistryPanel(gateway.cfg)
    if action == "promote":
        version = (await read_json(request, 4096)).get("version")
        if not isinstance(version, str) or not version:
            raise InvalidRequestError("version is required", param="version")
        move = panel.promote(name, version)
    elif action == "rollback":
        move = panel.rollback(name)
    else:
        raise InvalidRequestError("action: promote or rollback", param="action")
    call = _call(request, op, gateway)
    return _reply(await call.audited(f"router.{action}", name, move))


async def _key_rows(admin: AccessAdmin, search: str | None, page: int) -> dict[str, Any]:
    listed = await admin.list_keys({"team_id": None, "user_id": None, "key_alias": None}, [], 1, SEARCH_SCAN)
    keys = listed["keys"]
    if search:
        needle = search.lower()
        keys = [k for k in keys if any(needle in str(k.get(f) or "").lower()
                                       for f in ("key_id", "key_alias", "team_id", "user_id", "key_hint"))]
    shown = keys[(page - 1) * SHOWN: page * SHOWN]
    rows = [(await admin.info(k["key_id"]))["info"] for k in shown]
    return {"keys": rows, "matched": len(keys), "scanned": len(listed["keys"]), "total": listed["total_count"],
            "page": page, "page_size": SHOWN}


@router.get("/keys")
async def keys(request: Request, op: Reader, gateway: GatewayDep) -> Response:
    try:
        page = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        raise InvalidRequestError("page: an integer", param="page") from None
    return _reply(await _key_rows(AccessAdmin(_policy(gateway)), query_text(request, "q"), page))


@router.get("/teams")
async def teams(op: Reader, gateway: GatewayDep) -> Response:
    admin = AccessAdmin(_policy(gateway))
    listed = await admin.list_teams(1, SHOWN)
    rows = [(await admin.team_info(t["team_id"])) for t in listed["teams"]]
    return _reply({"teams": [{**r["team_info"], "keys": len(r["keys"])} for r in rows],
                   "total": listed["total_count"]})


def _call(request: Request, op: Operator, gateway: Gateway) -> AdminCall:
    return AdminCall(request, op.principal, AccessAdmin(_policy(gateway)))


@router.post("/keys")
async def key_create(request: Request, op: Writer, gateway: GatewayDep) -> Response:
    call = _call(request, op, gateway)
    fields = changes(validate(KeyGenerateRequest, await read_json(request, 65536)))
    detail = orjson.loads(orjson.dumps(fields))
    created = await call.audited("key.generate", None, call.admin.generate(fields, op.principal.key_id), detail,
                                 target_of=lambda r: r["key_id"])
    return _reply(created)


@router.post("/keys/{key_id}/{action}")
async def key_action(key_id: str, action: str, request: Request, op: Writer, gateway: GatewayDep) -> Response:
    if action not in KEY_ACTIONS:
        raise InvalidRequestError(f"action: one of {', '.join(KEY_ACTIONS)}", param="action")
    call = _call(request, op, gateway)
    target = (await call.admin.find_key(key_id))["key_id"]
    result: Any
    if action == "regenerate":
        result = await call.audited("key.regenerate", target, call.admin.regenerate(target))
    elif action == "delete":
        result = {"deleted_keys": await call.audited("key.delete", target, call.admin.delete_keys([target]))}
    else:
        blocked = {"blocked": action == "block"}
        result = await call.audited(f"key.{action}", target, call.admin.update_key(target, blocked))
    return _reply(result)


@router.post("/teams")
async def team_create(request: Request, op: Writer, gateway: GatewayDep) -> Response:
    call = _call(request, op, gateway)
    body = validate(TeamNewRequest, await read_json(request, 65536))
    fields = changes(body)
    created = await call.audited("team.new", body.team_id, call.admin.new_team(fields),
                                 orjson.loads(orjson.dumps(fields)), target_of=lambda r: r["team_id"])
    return _reply(created)


async def _spend(request: Request, gateway: Gateway) -> tuple[str, list[dict[str, Any]]]:
    group = request.query_params.get("group", "key")
    if group not in ("key", "team", "model", "day"):
        raise InvalidRequestError("group: one of key, team, model, day", param="group")
    try:
        days = min(366, max(1, int(request.query_params.get("days", "7"))))
    except ValueError:
        raise InvalidRequestError("days: an integer", param="days") from None
    start = datetime.now(UTC) - timedelta(days=days)
    if group == "day":
        return group, await _queries(gateway).spend_by_day(start, None)
    rows = await _policy(gateway).store.spend_report(group, {}, start, None)
    return group, rows


@router.get("/spend")
async def spend(request: Request, op: Reader, gateway: GatewayDep) -> Response:
    group, rows = await _spend(request, gateway)
    return _reply({"group": group, "rows": rows})


@router.get("/spend.csv")
async def spend_csv(request: Request, op: Reader, gateway: GatewayDep) -> Response:
    group, rows = await _spend(request, gateway)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else [group, "requests", "cost"])
    writer.writeheader()
    writer.writerows(rows)
    headers = {"content-disposition": f'attachment; filename="routeiq-spend-by-{group}.csv"',
               "cache-control": "no-store"}
    return Response(out.getvalue(), media_type="text/csv", headers=headers)


def config_sha256(gateway: Gateway) -> str:
    """The active config's fingerprint (secrets left out): which config a replica serves."""
    dumped = gateway.cfg.model_dump(mode="json")
    dumped.get("general_settings", {}).pop("master_key", None)
    return hashlib.sha256(orjson.dumps(dumped, option=orjson.OPT_SORT_KEYS)).hexdigest()


@router.get("/health")
async def health(request: Request, op: Reader, gateway: GatewayDep) -> Response:
    checks = request.app.state.readiness
    report = await checks(request.scope.get("server")) if checks else await readiness_report(gateway)
    cfg = gateway.cfg
    config = {"sha256": config_sha256(gateway), "models": len(cfg.model_list),
              "routers": [r.name for r in cfg.router_settings.routers], "version": request.app.version}
    return _reply({"readiness": report, "config": config})
