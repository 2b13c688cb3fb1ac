"""Any provider litellm supports, through ``acompletion``/``atext_completion``/``aembedding``.

litellm is imported here, lazily, with its cost map pinned to the bundled copy
(``LITELLM_LOCAL_MODEL_COST_MAP``) so an air-gapped replica never reaches out, and
with its per-call logging and telemetry off (they cost CPU on every call).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import orjson

from app.config import ModelEntry, resolve_secret
from app.providers.base import Prices, ProviderCall, ProviderResult, StreamEnd, StreamItem, Usage, usage_from
from app.providers.errors import from_exception

_RESERVED = {"model", "messages", "prompt", "input", "stream", "routeiq"}


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
        self._prices: dict[int, Prices] = {}

    def _kwargs(self, entry: ModelEntry, call: ProviderCall) -> dict[str, Any]:
        params = entry.litellm_params.model_dump(exclude_none=True, exclude={"weight"})
        params["api_key"] = resolve_secret(params.get("api_key"))
        extra = {k: v for k, v in call.body.items() if k not in _RESERVED}
        kwargs = {**extra, **params, "timeout": call.timeout_s, "num_retries": 0}
        if call.headers:
            kwargs["extra_headers"] = call.headers
        return kwargs

    def _prices_for(self, entry: ModelEntry, call: ProviderCall) -> Prices:
        if call.deployment not in self._prices:
            self._prices[call.deployment] = Prices.of(entry)
        return self._prices[call.deployment]

    async def _invoke(self, entry: ModelEntry, call: ProviderCall, stream: bool) -> Any:
        kwargs = self._kwargs(entry, call)
        body = call.body
        try:
            if call.endpoint == "chat":
                if stream:
                    kwargs["stream_options"] = {"include_usage": True}
                return await self._llm.acompletion(messages=body["messages"], stream=stream, **kwargs)
            if call.endpoint == "completions":
                return await self._llm.atext_completion(prompt=body["prompt"], stream=stream, **kwargs)
            return await self._llm.aembedding(input=body["input"], **kwargs)
        except Exception as err:  # noqa: BLE001  (litellm raises many types; mapped here)
            raise from_exception(err, entry.model_name) from None

    async def complete(self, entry: ModelEntry, call: ProviderCall) -> ProviderResult:
        response = await self._invoke(entry, call, stream=False)
        payload = response.model_dump(exclude_none=False)
        usage = usage_from(payload.get("usage"), self._prices_for(entry, call))
        payload.pop("_hidden_params", None)
        if isinstance(payload.get("usage"), dict):
            payload["usage"]["cost"] = usage.cost
        choices = payload.get("choices") or [{}]
        return ProviderResult(orjson.dumps(payload, default=str), usage, str(payload.get("model")),
                              choices[0].get("finish_reason"))

    async def stream(self, entry: ModelEntry, call: ProviderCall) -> AsyncIterator[StreamItem]:
        response = await self._invoke(entry, call, stream=True)
        usage: Usage | None = None
        try:
            async for chunk in response:
                payload = chunk.model_dump(exclude_none=True)
                if payload.get("usage"):
                    usage = usage_from(payload["usage"], self._prices_for(entry, call))
                    payload["usage"]["cost"] = usage.cost
                    if not call.include_usage and not payload.get("choices"):
                        continue
                yield b"data: " + orjson.dumps(payload, default=str) + b"\n\n"
        except Exception as err:  # noqa: BLE001
            raise from_exception(err, entry.model_name) from None
        yield b"data: [DONE]\n\n"
        yield StreamEnd(usage or Usage())

    async def close(self) -> None:
        return None
