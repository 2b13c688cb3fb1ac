"""OpenAI Responses API upstreams called natively: the client's ``/v1/responses`` body, as it is.

A deployment served by the OpenAI pass-through (an OpenAI-format model in a ``transport:
auto`` group) whose upstream has the Responses API, by ``model_info.supported_endpoints``
naming ``/v1/responses`` or, without it, litellm's cost map saying so for the model, gets a
``/v1/responses`` request that names it as the client sent it (validated; ``model``
replaced by the upstream's name, RouteIQ's ``routeiq`` field and the connection keys
removed, as ``params.native_body`` does) at ``{api_base}/responses``. The answer's bytes,
JSON or typed events, reach the client unchanged; only its ``usage`` is read to charge it:
the JSON body's, or the one ``response.completed`` (or ``.incomplete`` / ``.failed``)
carries at the end of a stream. Every other deployment gets the chat translation
(``app.responses``).

OpenAI counts cached prompt tokens inside ``input_tokens``
(``input_tokens_details.cached_tokens``): they are charged at the cache-read price
(``Prices.cached_cost``), the rest at the input price.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from app.config import ModelEntry, resolve_secret
from app.providers.base import Prices, ProviderCall, ProviderResult, StreamItem, Upstream, Usage, reported_tokens
from app.providers.cost_map import model_info
from app.providers.event_relay import EventRelay, json_answer
from app.providers.openai_native import PooledClient, Request, is_native
from app.providers.params import native_body

ENDPOINT = "/v1/responses"


def speaks_responses(entry: ModelEntry) -> bool:
    """Whether this entry's upstream has the Responses API (the caller also checks the group's transport)."""
    if not is_native(entry):
        return False
    declared = getattr(entry.model_info, "supported_endpoints", None)
    if declared is None:
        declared = model_info(entry.litellm_params.model).get("supported_endpoints")
    return isinstance(declared, list) and ENDPOINT in declared


def responses_usage(payload: Any, prices: Prices) -> Usage:
    """Usage with cost from a Responses ``usage`` object (cached prompt tokens at the read price)."""
    counts = payload if isinstance(payload, dict) else {}
    prompt, output = reported_tokens(counts.get("input_tokens")), reported_tokens(counts.get("output_tokens"))
    details = counts.get("input_tokens_details")
    cached = min(prompt, reported_tokens(details.get("cached_tokens")) if isinstance(details, dict) else 0)
    return Usage(prompt, output, prices.cost(prompt - cached, output) + prices.cached_cost(0, cached))


class ResponsesRelay(EventRelay):
    """Forwards a Responses stream as sent; remembers the usage of its final event."""

    looked_at = (b"response.completed", b"response.incomplete", b"response.failed")  # only the last event

    def __init__(self, prices: Prices) -> None:
        super().__init__()
        self._prices = prices
        self._counts: dict[str, Any] | None = None

    @property
    def usage(self) -> Usage | None:
        """What the stream reported (``None``: no final event with usage, the gateway estimates)."""
        return responses_usage(self._counts, self._prices) if self._counts is not None else None

    def _seen(self, payload: dict[str, Any]) -> None:
        if not isinstance(response := payload.get("response"), dict):
            return
        self.done = True
        if isinstance(usage := response.get("usage"), dict):
            self._counts = usage


class ResponsesNativeClient(PooledClient):
    """``ProviderClient`` for ``responses`` calls to upstreams that have the Responses API."""

    @staticmethod
    def _request(upstream: Upstream, call: ProviderCall) -> Request:
        p = upstream.entry.litellm_params
        body: dict[str, Any] = {**native_body(call.body), "model": p.model.split("/", 1)[1]}
        headers = {"content-type": "application/json", **call.headers}
        if key := resolve_secret(p.api_key):
            headers["authorization"] = f"Bearer {key}"
        return str(p.api_base).rstrip("/") + "/responses", orjson.dumps(body), headers

    async def complete(self, upstream: Upstream, call: ProviderCall) -> ProviderResult:
        raw = await self._post(upstream, call, self._request(upstream, call))
        payload, usage = json_answer(raw, upstream, call, responses_usage)
        status = payload.get("status")
        return ProviderResult(raw, usage, str(payload.get("model") or upstream.name),
                              status if isinstance(status, str) else None)

    def stream(self, upstream: Upstream, call: ProviderCall) -> AsyncIterator[StreamItem]:
        return self._relayed(upstream, call, self._request(upstream, call), ResponsesRelay(upstream.prices))
