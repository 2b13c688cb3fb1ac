"""OpenAI-compatible upstreams over one pooled aiohttp session, without litellm.

litellm's SDK costs ~4-6 ms of CPU per call and ~2 ms per streamed chunk on this
class of machine (shared/NOTES.md); for upstreams that already speak OpenAI's wire
format (``openai/``, ``hosted_vllm/``, ``custom_openai/`` with an ``api_base``)
RouteIQ forwards the body and the raw SSE bytes instead. Other providers go through
``litellm_client``. The choice is per provider group (``transport``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from app.config import ModelEntry, resolve_secret
from app.providers.base import Prices, ProviderCall, ProviderResult, StreamEnd, StreamItem, Usage, usage_from
from app.providers.errors import from_exception, from_status
from app.providers.sse import SSERelay

NATIVE_PREFIXES = ("openai/", "hosted_vllm/", "custom_openai/", "openai_like/")
_PATHS = {"chat": "/chat/completions", "completions": "/completions", "embeddings": "/embeddings"}


def is_native(entry: ModelEntry) -> bool:
    """Whether this entry's upstream speaks OpenAI's wire format at a known base URL."""
    p = entry.litellm_params
    return bool(p.api_base) and p.model.startswith(NATIVE_PREFIXES)


class OpenAINativeClient:
    """``ProviderClient`` for OpenAI-compatible upstreams."""

    def __init__(self, max_connections: int = 256) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._prices: dict[int, Prices] = {}

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:  # created lazily: it needs the running loop
            connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(
                connector=connector, json_serialize=lambda o: orjson.dumps(o).decode(), auto_decompress=False
            )
        return self._session

    def _request(self, entry: ModelEntry, call: ProviderCall) -> tuple[str, bytes, dict[str, str]]:
        p = entry.litellm_params
        body: dict[str, Any] = {**call.body, "model": p.model.split("/", 1)[1]}
        body.pop("routeiq", None)
        if body.get("stream"):
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        headers = {"content-type": "application/json", **call.headers}
        if key := resolve_secret(p.api_key):
            headers["authorization"] = f"Bearer {key}"
        return str(p.api_base).rstrip("/") + _PATHS[call.endpoint], orjson.dumps(body), headers

    def _prices_for(self, entry: ModelEntry, call: ProviderCall) -> Prices:
        if call.deployment not in self._prices:
            self._prices[call.deployment] = Prices.of(entry)
        return self._prices[call.deployment]

    async def complete(self, entry: ModelEntry, call: ProviderCall) -> ProviderResult:
        url, data, headers = self._request(entry, call)
        try:
            async with self._http().post(url, data=data, headers=headers) as resp:
                raw = await resp.read()
                if resp.status != 200:
                    raise from_status(resp.status, raw, resp.headers.get("retry-after"), entry.model_name)
        except aiohttp.ClientError as err:
            raise from_exception(err, entry.model_name) from None
        payload = orjson.loads(raw)
        usage = usage_from(payload.get("usage"), self._prices_for(entry, call))
        if isinstance(payload.get("usage"), dict):
            payload["usage"]["cost"] = usage.cost
            raw = orjson.dumps(payload)
        choices = payload.get("choices") or [{}]
        model = str(payload.get("model") or entry.model_name)
        return ProviderResult(raw, usage, model, choices[0].get("finish_reason"))

    async def stream(self, entry: ModelEntry, call: ProviderCall) -> AsyncIterator[StreamItem]:
        url, data, headers = self._request(entry, call)
        relay = SSERelay(self._prices_for(entry, call), call.include_usage)
        try:
            async with self._http().post(url, data=data, headers=headers) as resp:
                if resp.status != 200:
                    raw = await resp.read()
                    raise from_status(resp.status, raw, resp.headers.get("retry-after"), entry.model_name)
                try:
                    async for data_in in resp.content.iter_any():
                        if out := relay.feed(data_in):
                            yield out
                finally:
                    if not relay.done:
                        resp.close()  # do not return a half-read connection to the pool
        except aiohttp.ClientError as err:
            raise from_exception(err, entry.model_name) from None
        if not relay.done:
            raise from_exception(ConnectionError("stream ended early"), entry.model_name)
        if tail := relay.flush():
            yield tail
        yield StreamEnd(relay.usage or Usage())

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
