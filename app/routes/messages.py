"""``/v1/messages`` and ``/v1/messages/count_tokens``: Anthropic's Messages API.

Also served without the ``/v1`` prefix, like the other inference routes. A Messages
request is validated (``app.schemas.anthropic``), translated into an OpenAI chat body
(``app.anthropic.request``) and handed to the same ``Exchange`` as
``/v1/chat/completions``: routing, admission, limits, spend, fallbacks and the decision
log are chat's, with nothing of their own here. The answer is translated back (JSON,
or the SSE stream event by event). Every error leaves in Anthropic's envelope
(``app.anthropic.errors``), before a stream starts as an HTTP error, after it as an
``error`` event.

A request naming a concrete model also carries its body as sent (``app.anthropic.native``):
a deployment whose upstream speaks Anthropic's API (``anthropic/...`` in an ``auto``
transport group) gets that instead of the translation, and its answer, JSON or events,
is passed back as the upstream sent it (usage read for spend by the provider client).
Which of the two the answer is depends on the deployment that served it (a fallback may
differ from the plan's first pick), so the route asks the gateway after the call.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.anthropic.errors import anthropic_error_event, to_anthropic_error
from app.anthropic.native import native_messages
from app.anthropic.request import to_chat
from app.anthropic.response import to_message
from app.anthropic.stream import MessageStream
from app.auth import api_credential
from app.deps import GatewayDep
from app.errors import InvalidRequestError, NotFoundError, RouteIQError
from app.gateway import Gateway, StreamAnswer
from app.gateway.exchange import Answer, Exchange
from app.gateway.plan import NativeMessages
from app.http import id_header, json_response, read_json, request_id, validate
from app.providers.base import Usage
from app.providers.estimate import estimate_tokens
from app.routes.inference import ExchangeStream, lambda_header
from app.routes.models import visible_models
from app.schemas.anthropic import CountTokensRequest, MessagesRequest
from app.schemas.openai import ChatCompletionRequest, Steering

log = logging.getLogger("routeiq.messages")
router = APIRouter()


async def _anthropic_shaped(request: Request, work: Callable[[], Awaitable[Response]]) -> Response:
    """``work``'s response, or its error in Anthropic's envelope (never the app's OpenAI one)."""
    try:
        return await work()
    except Exception as err:  # every error of these routes is answered, Anthropic-shaped
        if not isinstance(err, RouteIQError):
            log.exception("unhandled error in request %s", getattr(request.state, "request_id", None))
        status, body, headers = to_anthropic_error(err)
        return json_response(body, id_header(request, headers), status)


async def _read(request: Request, gateway: Gateway) -> dict[str, Any]:
    return await read_json(request, gateway.cfg.general_settings.max_request_body_bytes)


async def _messages(request: Request, gateway: Gateway) -> Response:
    rid = request_id(request)
    async with gateway.exchange("chat", rid, request.headers, request.url.path) as ex:
        principal = await gateway.policy.authenticate(api_credential(request.headers))
        raw = await _read(request, gateway)
        incoming = validate(MessagesRequest, raw)
        body = to_chat(incoming)
        steering = Steering.of(validate(ChatCompletionRequest, body))
        native = _native(raw, incoming, request, gateway)
        answer = await ex.answer(body, steering, principal, lambda_header(request), native)
        if native is not None and ex.plan is not None and gateway.speaks_messages(ex.plan.deployment):
            return _passed_through(request, ex, answer)
        model = ex.plan.model if ex.plan else incoming.model
        if isinstance(answer, StreamAnswer):
            events = MessageStream(f"msg_{rid}", model, estimate_tokens(body)).translate(answer.body)
            return ExchangeStream(ex, StreamAnswer(answer.headers, events), id_header(request, answer.headers))
        message = to_message(orjson.loads(answer.body), f"msg_{rid}", model, ex.usage or Usage())
        return json_response(orjson.dumps(message), id_header(request, answer.headers))


def _native(raw: dict[str, Any], incoming: MessagesRequest, request: Request,
            gateway: Gateway) -> NativeMessages | None:
    """The request's native form when it names a concrete model (``auto`` is always translated)."""
    native = native_messages(raw, incoming, request.headers)
    if incoming.model not in gateway.catalog.routers:
        return native
    if native.only_native:
        raise InvalidRequestError(f"{native.only_native} is served only natively, by a concrete model whose "
                                  f"upstream speaks Anthropic's Messages API, not through `{incoming.model}`",
                                  param="model")
    return None


def _passed_through(request: Request, ex: Exchange, answer: Answer | StreamAnswer) -> Response:
    """The upstream's own Messages answer (JSON or events), as it sent it."""
    if isinstance(answer, StreamAnswer):
        ex.error_event = anthropic_error_event  # a failure mid-stream: Anthropic's ``error`` event
        return ExchangeStream(ex, answer, id_header(request, answer.headers))
    return json_response(answer.body, id_header(request, answer.headers))


async def _count_tokens(request: Request, gateway: Gateway) -> Response:
    request_id(request)
    principal = await gateway.policy.authenticate(api_credential(request.headers))
    incoming = validate(CountTokensRequest, await _read(request, gateway))
    if incoming.model not in visible_models(principal, gateway):
        raise NotFoundError(f"model: {incoming.model[:256]}", param="model")
    return json_response(orjson.dumps({"input_tokens": estimate_tokens(to_chat(incoming))}), id_header(request, {}))


@router.post("/v1/messages")
@router.post("/messages", include_in_schema=False)
async def messages(request: Request, gateway: GatewayDep) -> Response:
    return await _anthropic_shaped(request, lambda: _messages(request, gateway))


@router.post("/v1/messages/count_tokens")
@router.post("/messages/count_tokens", include_in_schema=False)
async def count_tokens(request: Request, gateway: GatewayDep) -> Response:
    """The prompt's size in tokens: the gateway's own estimate (~4 characters a token), not a tokenizer's."""
    return await _anthropic_shaped(request, lambda: _count_tokens(request, gateway))
