"""Anthropic Messages upstreams called natively: the client's Messages body, as it is.

A deployment whose ``litellm_params.model`` is ``anthropic/<name>`` (in a provider group
with ``transport: auto``) serves ``/v1/messages`` requests this way: the body the client
sent (validated, ``model`` replaced by ``<name>``, RouteIQ's own ``routeiq`` field and
the connection keys no transport forwards removed, as ``params.native_body`` does) goes
to ``{api_base}/v1/messages`` (``api_base`` with or without ``/v1``; by default
Anthropic's API) with ``x-api-key``, ``anthropic-version`` (the client's, else ``DEFAULT_VERSION``) and
the client's ``anthropic-beta``. So prompt caching, ``thinking``, ``document`` blocks and
server tools reach the model, and the answer's bytes reach the client unchanged; only
its ``usage`` is read (``app.providers.anthropic_usage``) to charge it.

Chat requests to the same deployment still go through litellm (``litellm_client``), and
``/v1/messages`` requests served by any other deployment are translated to chat
(``app.anthropic``). Timeouts, the guarded resolver and error mapping are the OpenAI
pass-through's (``app.providers.openai_native``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from app.config import ModelEntry, resolve_secret
from app.providers.anthropic_usage import AnthropicRelay, anthropic_usage
from app.providers.base import ProviderCall, ProviderResult, StreamItem, Upstream
from app.providers.event_relay import json_answer
from app.providers.openai_native import PooledClient, Request
from app.providers.params import native_body

PREFIX = "anthropic/"
DEFAULT_API_BASE = "https://api.anthropic.com"
DEFAULT_VERSION = "2023-06-01"
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")
"""Client headers a native call carries upstream (the route copies them into the call)."""


def speaks_messages(entry: ModelEntry) -> bool:
    """Whether this entry's upstream is called with Anthropic's Messages API (``anthropic/...``)."""
    return entry.litellm_params.model.startswith(PREFIX)


def messages_url(api_base: str) -> str:
    """The Messages endpoint under ``api_base``, given with or without ``/v1`` (or the whole path),
    as LiteLLM accepts it."""
    base = api_base.rstrip("/")
    if base.endswith("/v1/messages"):
        return base
    return base + ("/messages" if base.endswith("/v1") else "/v1/messages")


class AnthropicNativeClient(PooledClient):
    """``ProviderClient`` for ``messages`` calls to Anthropic upstreams."""

    @staticmethod
    def _request(upstream: Upstream, call: ProviderCall) -> Request:
        p = upstream.entry.litellm_params
        body: dict[str, Any] = {**native_body(call.body), "model": p.model.removeprefix(PREFIX)}
        headers = {"content-type": "application/json", "anthropic-version": DEFAULT_VERSION, **call.headers}
        if key := resolve_secret(p.api_key):
            headers["x-api-key"] = key
        return messages_url(p.api_base or DEFAULT_API_BASE), orjson.dumps(body), headers

    async def complete(self, upstream: Upstream, call: ProviderCall) -> ProviderResult:
        raw = await self._post(upstream, call, self._request(upstream, call))
        payload, usage = json_answer(raw, upstream, call, anthropic_usage)
        model = str(payload.get("model") or upstream.name)
        reason = payload.get("stop_reason")
        return ProviderResult(raw, usage, model, reason if isinstance(reason, str) else None)

    def stream(self, upstream: Upstream, call: ProviderCall) -> AsyncIterator[StreamItem]:
        return self._relayed(upstream, call, self._request(upstream, call), AnthropicRelay(upstream.prices))
