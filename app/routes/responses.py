"""``/v1/responses``: OpenAI's Responses API (``client.responses.create``).

Also served without the ``/v1`` prefix, like the other inference routes. A Responses
request is validated (``app.schemas.responses``), translated into an OpenAI chat body
(``app.responses.request``) and handed to the same ``Exchange`` as
``/v1/chat/completions``: routing, admission, limits, spend, fallbacks and the decision
log are chat's, with nothing of their own here. The answer is translated back (JSON,
or the SSE stream event by event). Errors are the app's OpenAI-shaped ones, the same
envelope the Responses API uses; after a stream started, ``error`` and
``response.failed`` events. Nothing is stored, so there is no ``GET /v1/responses/{id}``
and ``previous_response_id`` is a 400.

A request naming a concrete model also carries its body as sent: a deployment whose
upstream has the Responses API (``app.providers.responses_native``) gets that instead of
the translation, and its answer, JSON or typed events, is passed back as the upstream sent
it (usage read for spend by the provider client). Which of the two the answer is depends
on the deployment that served it (a fallback may differ), so the route asks the gateway
after the call. ``auto`` is always translated.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.auth import api_credential
from app.deps import GatewayDep
from app.errors import to_openai_error
from app.gateway import StreamAnswer
from app.gateway.plan import NativeMessages
from app.http import id_header, json_response, read_json, request_id, validate
from app.providers.base import Usage
from app.providers.estimate import estimate_tokens
from app.responses.request import to_chat
from app.responses.response import echo, to_response
from app.responses.stream import ResponseStream
from app.routes.inference import ExchangeStream, lambda_header
from app.schemas.openai import ChatCompletionRequest, Steering
from app.schemas.responses import ResponsesRequest

router = APIRouter()


@router.post("/v1/responses")
@router.post("/responses", include_in_schema=False)
async def responses(request: Request, gateway: GatewayDep) -> Response:
    rid = request_id(request)
    async with gateway.exchange("chat", rid, request.headers, request.url.path) as ex:
        principal = await gateway.policy.authenticate(api_credential(request.headers))
        raw = await read_json(request, gateway.cfg.general_settings.max_request_body_bytes)
        incoming = validate(ResponsesRequest, raw)
        body = to_chat(incoming)
        steering = Steering.of(validate(ChatCompletionRequest, body))
        native = None if incoming.model in gateway.catalog.routers else NativeMessages(raw, endpoint="responses")
        answer = await ex.answer(body, steering, principal, lambda_header(request), native)
        if native is not None and ex.plan is not None and gateway.speaks(ex.plan.deployment, "responses"):
            if isinstance(answer, StreamAnswer):  # the upstream's own events, as it sent them
                ex.error_event = responses_error_event
                return ExchangeStream(ex, answer, id_header(request, answer.headers))
            return json_response(answer.body, id_header(request, answer.headers))
        model, settings = (ex.plan.model if ex.plan else incoming.model), echo(incoming)
        if isinstance(answer, StreamAnswer):
            events = ResponseStream(rid, model, settings, estimate_tokens(body)).translate(answer.body)
            return ExchangeStream(ex, StreamAnswer(answer.headers, events), id_header(request, answer.headers))
        response = to_response(orjson.loads(answer.body), rid, model, ex.usage or Usage(), settings)
        return json_response(orjson.dumps(response), id_header(request, answer.headers))


def responses_error_event(err: BaseException) -> bytes:
    """The Responses API's ``error`` event, ending a passed-through stream that failed midway."""
    _, body, _ = to_openai_error(err)
    error = orjson.loads(body)["error"]
    payload = {"type": "error", "code": error.get("code") or error.get("type"), "message": error.get("message"),
               "param": error.get("param"), "sequence_number": 0}
    return b"event: error\ndata: " + orjson.dumps(payload) + b"\n\n"
