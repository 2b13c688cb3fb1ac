"""``/v1/models`` and ``/v1/models/{id}``: the models and routers a caller may name.

The list shows configured names (a wildcard as its pattern, aliases unless hidden); a
single model is found for any name a request may use (``openai/gpt-4o`` under ``openai/*``,
a hidden alias). Also served without the ``/v1`` prefix, as LiteLLM proxy serves them. A model the
caller may not use is the same 404 as one that does not exist: names are not probeable.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.auth import Principal
from app.deps import GatewayDep, PrincipalDep
from app.errors import NotFoundError
from app.gateway import Gateway
from app.http import id_header, json_response

router = APIRouter()


def visible_models(principal: Principal, gateway: Gateway) -> list[str]:
    """The names this caller may use (``/v1/messages/count_tokens`` 404s on the others too)."""
    allowed = principal.allowed_models
    routers = gateway.catalog.routers
    return [n for n in gateway.catalog.public_names() if allowed is None or n in allowed or n in routers]


def may_name(principal: Principal, gateway: Gateway, name: str) -> bool:
    """Whether this caller may send ``model: name``: a router, or a name the catalog resolves
    (a hidden alias, a wildcard's concrete name) that the key's models list allows."""
    if name in gateway.catalog.routers:
        return True
    allowed = principal.allowed_models
    return (allowed is None or name in allowed) and gateway.catalog.resolve(name) is not None


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "routeiq"}


@router.get("/v1/models")
@router.get("/models", include_in_schema=False)
async def list_models(request: Request, principal: PrincipalDep, gateway: GatewayDep) -> Response:
    data = [_model(n) for n in visible_models(principal, gateway)]
    return json_response(orjson.dumps({"object": "list", "data": data}), id_header(request, {}))


@router.get("/v1/models/{model_id:path}")
@router.get("/models/{model_id:path}", include_in_schema=False)
async def retrieve_model(model_id: str, request: Request, principal: PrincipalDep, gateway: GatewayDep) -> Response:
    if not may_name(principal, gateway, model_id):
        raise NotFoundError(f"The model '{model_id[:256]}' does not exist or you do not have access to it.",
                            param="model", code="model_not_found")
    return json_response(orjson.dumps(_model(model_id)), id_header(request, {}))
