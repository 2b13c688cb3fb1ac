"""Any provider litellm supports, through ``acompletion``/``atext_completion``/``aembedding``.

litellm is imported here, lazily, with its cost map pinned to the bundled copy
(``LITELLM_LOCAL_MODEL_COST_MAP``) so an air-gapped replica never reaches out, and
with its per-call logging and telemetry off (they cost CPU on every call). Its keyword
arguments come from the config (connection, credentials) and from an allowlist of the
client's OpenAI parameters (``app.providers.params``): a body can never redirect a call.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import orjson

from app.config import resolve_secret
from app.providers.base import ProviderCall, ProviderResult, StreamEnd, StreamItem, Upstream, Usage, usage_from
from app.providers.errors import translated
from app.providers.params import litellm_arguments


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.turn_off_message_logging = True
    litellm.disable_streaming_logging = True
    return litellm


class LiteLLMClient:
    """``ProviderClient`` over the litellm SDK."""

    def __init__(self) -> None:
        self._llm = _litellm()

    @staticmethod
    def _kwargs(upstream: Upstream, call: ProviderCall) -> dict[str, Any]:
        params = upstream.entry.litellm_params.model_dump(exclude_none=True, exclude={"weight", "rpm", "tpm"})
        params["api_key"] = resolve_secret(params.get("api_key"))
        kwargs = {**litellm_arguments(call.endpoint, call.body), **params, "timeout": call.timeout_s,
                  "num_retries": 0}
        if call.headers:
            kwargs["extra_headers"] = call.headers
        return kwargs

    async def _invoke(self, upstream: Upstream, call: ProviderCall, stream: bool) -> Any:
        kwargs = self._kwargs(upstream, call)
        body = call.body
        with translated(upstream.name, call.request_id):
            if call.endpoint == "chat":
                if stream:
                    kwargs["stream_options"] = {"include_usage": True}
                return await self._llm.acompletion(messages=body["messages"], stream=stream, **kwargs)
            if call.endpoint == "completions":
                return await self._llm.atext_completion(prompt=body["prompt"], stream=stream, **kwargs)
            return await self._llm.aembedding(input=body["input"], **kwargs)

    async def complete(self, upstream: Upstream, call: ProviderCall) -> ProviderResult:
        response = await self._invoke(upstream, call, stream=False)
        payload = response.model_dump(exclude_none=False)
        usage = usage_from(payload.get("usage"), upstream.prices)
        payload.pop("_hidden_params", None)
        if isinstance(payload.get("usage"), dict):
            payload["usage"]["cost"] = usage.cost
        choices = payload.get("choices") or [{}]
        return ProviderResult(orjson.dumps(payload, default=str), usage, str(payload.get("model")),
                              choices[0].get("finish_reason"))

    async def stream(self, upstream: Upstream, call: ProviderCall) -> AsyncIterator[StreamItem]:
        response = await self._invoke(upstream, call, stream=True)
        usage: Usage | None = None
        with translated(upstream.name, call.request_id):
            async for chunk in response:
                payload = chunk.model_dump(exclude_none=True)
                if payload.get("usage"):
                    usage = usage_from(payload["usage"], upstream.prices)
                    payload["usage"]["cost"] = usage.cost
                    if not call.include_usage and not payload.get("choices"):
                        continue
                yield b"data: " + orjson.dumps(payload, default=str) + b"\n\n"
        yield b"data: [DONE]\n\n"
        yield StreamEnd(usage)

    async def close(self) -> None:
        return None
