"""``/v1/models``: the models and routers a caller may name."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.deps import GatewayDep, PrincipalDep
from app.http import id_header, json_response

router = APIRouter()


@router.get("/v1/models")
async def list_models(request: Request, principal: PrincipalDep, gateway: GatewayDep) -> Response:
    allowed = principal.allowed_models
    routers = gateway.catalog.routers
    names = [n for n in gateway.catalog.public_names() if allowed is None or n in allowed or n in routers]
    data = [{"id": n, "object": "model", "created": 0, "owned_by": "routeiq"} for n in names]
    return json_response(orjson.dumps({"object": "list", "data": data}), id_header(request, {}))
