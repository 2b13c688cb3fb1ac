"""``/v1/chat/completions``, ``/v1/completions`` and ``/v1/embeddings``.

All three share one path: authenticate, read and validate the body, let the gateway
plan and call, then answer JSON or SSE. Errors before the first streamed byte are
ordinary HTTP errors; after it, the stream ends with an OpenAI-shaped error event.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from app.errors import InvalidRequestError, sse_error_event
from app.gateway import Gateway, Plan, RequestContext
from app.http import id_header, json_response, read_json, request_id, validate
from app.providers.base import Endpoint, StreamEnd, StreamItem
from app.schemas.openai import ChatCompletionRequest, CompletionRequest, EmbeddingRequest

router = APIRouter()
log = logging.getLogger("routeiq.ingress")


def trace_headers(request: Request) -> dict[str, str]:
    """W3C trace context to forward: the caller's, or a fresh root."""
    parent = request.headers.get("traceparent")
    if parent is None:
        parent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    headers = {"traceparent": parent}
    if state := request.headers.get("tracestate"):
        headers["tracestate"] = state
    return headers


def _lambda_header(request: Request) -> float | None:
    raw = request.headers.get("x-routeiq-lambda")
    if raw is None:
        return None
    try:
        lam = float(raw)
    except ValueError:
        lam = -1.0
    if lam < 0:
        raise InvalidRequestError("x-routeiq-lambda must be a number >= 0", param="x-routeiq-lambda")
    return lam


async def _relay(
    gateway: Gateway, ctx: RequestContext, plan: Plan, first: StreamItem, rest: AsyncIterator[StreamItem]
) -> AsyncIterator[bytes]:
    rid = ctx.request_id
    gateway.admission.active_streams += 1
    try:
        item = first
        while True:
            if isinstance(item, bytes):
                yield item
            elif isinstance(item, StreamEnd):
                await gateway.finish(ctx, plan, item.usage)
                return
            item = await anext(rest)
    except StopAsyncIteration:
        return
    except Exception as err:  # noqa: BLE001  (any failure mid-stream becomes an error event)
        log.warning("stream %s failed after it started: %s", rid, err)
        yield sse_error_event(err)
    finally:
        gateway.admission.active_streams -= 1
        gateway.admission.leave()
        await rest.aclose()  # type: ignore[attr-defined]


async def serve(request: Request, endpoint: Endpoint, schema: type[BaseModel]) -> Response:
    """The shared inference path, inside the replica's admission bound."""
    gateway: Gateway = request.app.state.gateway
    gateway.admission.enter()
    streaming = False
    try:
        response = await _serve(request, gateway, endpoint, schema)
        streaming = isinstance(response, StreamingResponse)
        return response
    finally:
        if not streaming:  # a stream leaves the bound when its relay ends
            gateway.admission.leave()


async def _serve(request: Request, gateway: Gateway, endpoint: Endpoint, schema: type[BaseModel]) -> Response:
    rid = request_id(request)
    principal = await gateway.policy.authenticate(request.headers.get("authorization"))
    body = await read_json(request, gateway.cfg.general_settings.max_request_body_bytes)
    validate(schema, body)
    ctx = RequestContext(rid, principal, trace_headers(request), _lambda_header(request))
    if body.get("stream"):
        plan, first, rest = await gateway.stream(endpoint, body, ctx)
        headers = id_header(rid, {"cache-control": "no-cache", **plan.headers()})
        return StreamingResponse(_relay(gateway, ctx, plan, first, rest), media_type="text/event-stream", headers=headers)
    plan, result = await gateway.complete(endpoint, body, ctx)
    headers = id_header(rid, {**plan.headers(), "x-routeiq-cost": f"{result.usage.cost:.10f}"})
    return json_response(result.body, headers)


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    return await serve(request, "chat", ChatCompletionRequest)


@router.post("/v1/completions")
async def completions(request: Request) -> Response:
    return await serve(request, "completions", CompletionRequest)


@router.post("/v1/embeddings")
async def embeddings(request: Request) -> Response:
    return await serve(request, "embeddings", EmbeddingRequest)
