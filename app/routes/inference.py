"""``/v1/chat/completions``, ``/v1/completions`` and ``/v1/embeddings``.

All three share one path: authenticate, read and validate the body, let the gateway
plan and call, then answer JSON or SSE. Errors before the first streamed byte are
ordinary HTTP errors; after it, the stream ends with an OpenAI-shaped error event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import BaseModel

from app.decisions import DecisionRecord
from app.errors import InvalidRequestError, RouteIQError, sse_error_event
from app.gateway import Gateway, Plan, RequestContext
from app.http import id_header, json_response, read_json, request_id, validate
from app.providers.base import Endpoint, StreamEnd, StreamItem, Usage
from app.schemas.openai import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from app.tracing import extract, headers_for, tracer

router = APIRouter()
log = logging.getLogger("routeiq.ingress")


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


class _Exchange:
    """One request's bookkeeping: its span, its clock, its admission slot and metrics."""

    def __init__(self, request: Request, gateway: Gateway, endpoint: Endpoint) -> None:
        self.gateway, self.endpoint = gateway, endpoint
        self.started = time.perf_counter()
        # Under FastAPI's own tracing (when a tracer provider is installed) a server span is
        # already current and carries the caller's traceparent: nest under it; else extract.
        current = trace.get_current_span().get_span_context()
        self.context = otel_context.get_current() if current.is_valid else extract(request.headers)
        self.span = tracer().start_span("routeiq.request", context=self.context, kind=SpanKind.SERVER,
                                        attributes={"http.route": request.url.path, "gen_ai.operation.name": endpoint})
        self.otel = trace.set_span_in_context(self.span, self.context)
        self.plan: Plan | None = None
        self.usage = Usage()
        self.request_id = self.key_id = self.router = ""
        self.ctx: RequestContext | None = None
        self.arrived = time.time()

    def finish(self, status: int, err: BaseException | None = None) -> None:
        gw = self.gateway
        model = self.plan.deployment.entry.model_name if self.plan else "none"
        strategy = self.plan.decision.strategy if self.plan and self.plan.decision else "direct"
        gw.metrics.request_done(endpoint=self.endpoint, model=model, status=status, strategy=strategy,
                                seconds=time.perf_counter() - self.started)
        if status >= 400:
            gw.metrics.rejected(reason=getattr(err, "code", None) or str(status))
        self.span.set_attribute("http.response.status_code", status)
        if self.plan:
            self.span.set_attributes(self.plan.span_attributes())
        if err is not None:
            self.span.set_status(Status(StatusCode.ERROR, str(err)[:200]))
        self.span.end()
        plan = self.plan or (self.ctx.plan if self.ctx else None)  # a failed request has only ctx's
        if plan is not None and plan.decision is not None:
            gw.decisions.record(self._decision(plan, status))

    def _decision(self, plan: Plan, status: int) -> DecisionRecord:
        u = self.usage
        assert plan.decision is not None
        d = plan.decision
        return DecisionRecord(
            request_id=self.request_id, created_at=self.arrived, key_id=self.key_id, router=self.router,
            strategy=d.strategy, lam=d.lam, query=plan.query, candidates=dict(d.scores),
            chosen=plan.deployment.entry.model_name, routed_to=d.model, route_latency_ms=d.latency_ms,
            latency_ms=(time.perf_counter() - self.started) * 1000,
            prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens, cost=u.cost, status=status,
            fallback=d.fallback)


async def _relay(
    ex: _Exchange, ctx: RequestContext, first: StreamItem, rest: AsyncIterator[StreamItem]
) -> AsyncIterator[bytes]:
    gateway, plan = ex.gateway, ex.plan
    assert plan is not None
    gateway.admission.active_streams += 1
    status, failure = 200, None
    try:
        item = first
        gateway.metrics.first_token(model=plan.deployment.entry.model_name, seconds=time.perf_counter() - ex.started)
        while True:
            if isinstance(item, bytes):
                yield item
            elif isinstance(item, StreamEnd):
                ex.usage = item.usage
                await gateway.finish(ctx, plan, item.usage)
                return
            item = await anext(rest)
    except StopAsyncIteration:
        return
    except asyncio.CancelledError:
        status = 499  # the client went away
        raise
    except Exception as err:  # noqa: BLE001  (any failure mid-stream becomes an error event)
        log.warning("stream %s failed after it started: %s", ctx.request_id, err)
        status, failure = getattr(err, "status", 500), err
        yield sse_error_event(err)
    finally:
        gateway.admission.active_streams -= 1
        gateway.admission.leave()
        gateway.metrics.load(inflight=gateway.admission.inflight, active_streams=gateway.admission.active_streams)
        ex.finish(status, failure)
        await rest.aclose()  # type: ignore[attr-defined]


async def serve(request: Request, endpoint: Endpoint) -> Response:
    """The shared inference path, inside the replica's admission bound."""
    gateway: Gateway = request.app.state.gateway
    ex = _Exchange(request, gateway, endpoint)
    try:
        gateway.admission.enter()
    except RouteIQError as err:
        ex.finish(err.status, err)
        raise
    gateway.metrics.load(inflight=gateway.admission.inflight, active_streams=gateway.admission.active_streams)
    try:
        return await _serve(request, ex)
    except BaseException as err:
        gateway.admission.leave()
        ex.finish(getattr(err, "status", 500), err)
        raise


async def _serve(request: Request, ex: _Exchange) -> Response:
    gateway, endpoint = ex.gateway, ex.endpoint
    rid = request_id(request)
    ex.span.set_attribute("routeiq.request_id", rid)
    ex.request_id = rid
    principal = await gateway.policy.authenticate(request.headers.get("authorization"))
    ex.key_id = principal.key_id
    body = await read_json(request, gateway.cfg.general_settings.max_request_body_bytes)
    validate(_SCHEMAS[endpoint], body)
    ex.span.set_attribute("gen_ai.request.model", str(body["model"]))
    ex.router = str(body["model"])
    trace_headers = headers_for(ex.otel, request.headers)
    ctx = ex.ctx = RequestContext(rid, principal, trace_headers, _lambda_header(request), otel=ex.otel)
    if body.get("stream"):
        ex.plan, first, rest = await gateway.stream(endpoint, body, ctx)
        headers = id_header(request, {"cache-control": "no-cache", **ex.plan.headers()})
        return StreamingResponse(_relay(ex, ctx, first, rest), media_type="text/event-stream", headers=headers)
    ex.plan, result = await gateway.complete(endpoint, body, ctx)
    ex.usage = result.usage
    ex.span.set_attributes(result.span_attributes())
    gateway.admission.leave()
    ex.finish(200)
    headers = id_header(request, {**ex.plan.headers(), "x-routeiq-cost": f"{result.usage.cost:.10f}"})
    return json_response(result.body, headers)


_SCHEMAS: dict[str, type[BaseModel]] = {
    "chat": ChatCompletionRequest, "completions": CompletionRequest, "embeddings": EmbeddingRequest}


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    return await serve(request, "chat")


@router.post("/v1/completions")
async def completions(request: Request) -> Response:
    return await serve(request, "completions")


@router.post("/v1/embeddings")
async def embeddings(request: Request) -> Response:
    return await serve(request, "embeddings")
