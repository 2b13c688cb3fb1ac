"""``GET /router/info`` (master key or an admin key): which router version serves, where."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.deps import GatewayDep, PrincipalDep
from app.errors import PermissionDeniedError
from app.http import id_header, json_response

router = APIRouter()


@router.get("/router/info")
async def router_info(request: Request, principal: PrincipalDep, gateway: GatewayDep) -> Response:
    if not principal.is_admin:
        raise PermissionDeniedError("only the master key or an admin key may read /router/info")
    return json_response(orjson.dumps(await gateway.router_info.report()), id_header(request, {}))
