"""``GET /router/info`` (master key or an admin key): which router version serves, where."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.access.policy import VirtualKeyPolicy
from app.deps import GatewayDep, PrincipalDep
from app.errors import PermissionDeniedError
from app.http import id_header, json_response

router = APIRouter()


@router.get("/router/info")
async def router_info(request: Request, principal: PrincipalDep, gateway: GatewayDep) -> Response:
    """Not ``Admin(...)``: that needs virtual keys, and a gateway without them (master key
    only) must still say which router serves. A refused key is audited like the admin API's."""
    if not principal.is_admin:
        if isinstance(policy := gateway.policy, VirtualKeyPolicy):
            await policy.store.audit(principal.key_id, "router.info", None, "denied")
        raise PermissionDeniedError("only the master key or an admin key may read /router/info")
    return json_response(orjson.dumps(await gateway.router_info.report()), id_header(request, {}))
