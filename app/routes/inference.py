"""``/v1/chat/completions``, ``/v1/completions`` and ``/v1/embeddings``.

Each is also served without the ``/v1`` prefix, as LiteLLM proxy serves them: clients
ported from it often use ``base_url=http://proxy:4000`` (docs/coming-from-litellm.md).

Each route validates and hands over: the request's ``Exchange`` admits it (503 when
the replica is full), the caller is authenticated, the body read and validated, and
``answer`` plans, routes and calls. Errors before the first streamed byte are ordinary
HTTP errors; after it, the stream ends with an OpenAI-shaped error event. The
exchange, not the route, settles and measures the request, exactly once.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from app.auth import api_credential
from app.deps import GatewayDep
from app.errors import InvalidRequestError
from app.gateway import Exchange, Gateway, StreamAnswer
from app.http import id_header, json_response, read_json, request_id, validate
from app.providers.base import Endpoint
from app.schemas.openai import ChatCompletionRequest, CompletionRequest, EmbeddingRequest, Steering

router = APIRouter()
_SCHEMAS: dict[str, type[BaseModel]] = {
    "chat": ChatCompletionRequest, "completions": CompletionRequest, "embeddings": EmbeddingRequest}


class ExchangeStream(StreamingResponse):
    """A streamed answer that ends its exchange whatever happens to the response
    (sent, client gone, or the body never iterated)."""

    def __init__(self, exchange: Exchange, answer: StreamAnswer, headers: dict[str, str]) -> None:
        super().__init__(answer.body, media_type="text/event-stream", headers=headers)
        self._exchange = exchange

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._exchange.finish_stream()


def lambda_header(request: Request) -> float | None:
    """The ``x-routeiq-lambda`` header (also read by ``/v1/messages``); 400 when not a number >= 0."""
    raw = request.headers.get("x-routeiq-lambda")
    if raw is None:
        return None
    try:
        lam = float(raw)
    except ValueError:
        lam = -1.0
    if not math.isfinite(lam) or lam < 0:
        raise InvalidRequestError("x-routeiq-lambda must be a finite number >= 0", param="x-routeiq-lambda")
    return lam


async def serve(request: Request, gateway: Gateway, endpoint: Endpoint) -> Response:
    """The shared inference path: validate, hand over to the exchange, answer."""
    rid = request_id(request)
    async with gateway.exchange(endpoint, rid, request.headers, request.url.path) as ex:
        principal = await gateway.policy.authenticate(api_credential(request.headers))
        body = await read_json(request, gateway.cfg.general_settings.max_request_body_bytes)
        steering = Steering.of(validate(_SCHEMAS[endpoint], body))
        answer = await ex.answer(body, steering, principal, lambda_header(request))
        if isinstance(answer, StreamAnswer):
            return ExchangeStream(ex, answer, id_header(request, answer.headers))
        return json_response(answer.body, id_header(request, answer.headers))


@router.post("/v1/chat/completions")
@router.post("/chat/completions", include_in_schema=False)
async def chat_completions(request: Request, gateway: GatewayDep) -> Response:
    return await serve(request, gateway, "chat")


@router.post("/v1/completions")
@router.post("/completions", include_in_schema=False)
async def completions(request: Request, gateway: GatewayDep) -> Response:
    return await serve(request, gateway, "completions")


@router.post("/v1/embeddings")
@router.post("/embeddings", include_in_schema=False)
async def embeddings(request: Request, gateway: GatewayDep) -> Response:
    return await serve(request, gateway, "embeddings")
