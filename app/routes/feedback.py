"""``POST /v1/feedback``: a caller rates the answer of a routed request (0..1).

The score lands in the request's row of the decision log (``feedback``), which is what
the router's training loop learns from (docs/observability.md). A virtual key may rate
only its own requests; the master key and admin keys any. An unknown request id (or
another key's) is a 404, so ids of other callers cannot be probed.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.deps import GatewayDep, PrincipalDep
from app.errors import NotFoundError
from app.http import id_header, json_response, read_json, validate
from app.schemas.feedback import FeedbackRequest

router = APIRouter()
MAX_BODY = 4096


@router.post("/v1/feedback")
async def feedback(request: Request, principal: PrincipalDep, gateway: GatewayDep) -> Response:
    body = validate(FeedbackRequest, await read_json(request, MAX_BODY))
    owner = body.key_id if principal.is_admin else principal.key_id  # a key rates only its own rows
    if not await gateway.decisions.feedback(body.request_id, body.score, owner):
        raise NotFoundError(f"No routed request with id `{body.request_id}`", param="request_id",
                            code="request_not_found")
    reply = {"object": "feedback", "request_id": body.request_id, "score": body.score}
    return json_response(orjson.dumps(reply), id_header(request, {}))
