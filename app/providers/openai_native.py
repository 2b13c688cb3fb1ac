"""OpenAI-compatible upstreams over one pooled aiohttp session, without litellm.

litellm's SDK costs ~4-6 ms of CPU per call and ~2 ms per streamed chunk on this
class of machine (shared/NOTES.md); for upstreams that already speak OpenAI's wire
format (``openai/``, ``hosted_vllm/``, ``custom_openai/`` with an ``api_base``)
RouteIQ forwards the body and the raw SSE bytes instead. Other providers go through
``litellm_client``. The choice is per provider group (``transport``). The session, the
POST and the stream relay loop (``PooledClient``) are shared with the native Anthropic
Messages client (``anthropic_native``), which differs only in its request and usage.

Timeouts are explicit, never aiohttp's default 300 s *total* (which would cut a long
healthy stream): connecting is bounded by ``connect_timeout_s``; a non-streamed answer
by the caller's request deadline; a stream by the silence between two reads
(``sock_read`` = ``stream_idle_timeout_s``), however long it runs in total.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any, Protocol

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from app.config import ModelEntry, resolve_secret
from app.providers.base import ProviderCall, ProviderResult, StreamEnd, StreamItem, Upstream, Usage, usage_from
from app.providers.egress import is_public
from app.providers.errors import from_exception, from_status, translated
from app.providers.estimate import estimated_usage
from app.providers.params import native_body
from app.providers.sse import SSERelay

NATIVE_PREFIXES = ("openai/", "hosted_vllm/", "custom_openai/", "openai_like/")
_PATHS = {"chat": "/chat/completions", "completions": "/completions", "embeddings": "/embeddings"}
Request = tuple[str, bytes, dict[str, str]]
"""A native call as sent: URL, body and headers."""


def is_native(entry: ModelEntry) -> bool:
    """Whether this entry's upstream speaks OpenAI's wire format at a known base URL."""
    p = entry.litellm_params
    return bool(p.api_base) and p.model.startswith(NATIVE_PREFIXES)


def timeout_for(upstream: Upstream, stream: bool) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=None, connect=upstream.connect_timeout_s, sock_connect=upstream.connect_timeout_s,
        sock_read=upstream.stream_idle_timeout_s if stream else None)


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing every address that is not public."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if is_public(r["host"])]
        if not allowed:
            raise OSError(f"upstream host {host!r} resolves only to non-public addresses (refused)")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def pooled_session(max_connections: int, public_only: bool) -> aiohttp.ClientSession:
    """The keep-alive session a native client sends through (``public_only``: the guarded resolver)."""
    resolver = GuardedResolver() if public_only else None
    connector = aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=30, resolver=resolver)
    return aiohttp.ClientSession(connector=connector, json_serialize=lambda o: orjson.dumps(o).decode(),
                                 auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None))


class Relay(Protocol):
    """What turns an upstream's SSE reads into the bytes to forward and the usage to charge
    (``SSERelay`` for OpenAI's format, ``AnthropicRelay`` for Anthropic's)."""

    done: bool

    @property
    def usage(self) -> Usage | None: ...

    def feed(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class PooledClient:
    """The pooled session a native client sends through, made lazily (it needs the running loop)."""

    def __init__(self, max_connections: int = 256, *, public_only: bool = False) -> None:
        self._max_connections = max_connections
        self._public_only = public_only
        """``general_settings.block_private_upstreams``: refuse non-public addresses at connect time."""
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = pooled_session(self._max_connections, self._public_only)
        return self._session

    async def _post(self, upstream: Upstream, call: ProviderCall, request: Request) -> bytes:
        """The body of a 200 answer to a non-streamed call (any other status raised as RouteIQ's error)."""
        url, data, headers = request
        with translated(upstream.name, call.request_id):
            async with self._http().post(url, data=data, headers=headers, timeout=timeout_for(upstream, False)) as resp:
                raw = await resp.read()
                if resp.status != 200:
                    raise from_status(resp.status, raw, resp.headers.get("retry-after"), upstream.name,
                                      call.request_id)
        return raw

    async def _relayed(self, upstream: Upstream, call: ProviderCall, request: Request,
                       relay: Relay) -> AsyncIterator[StreamItem]:
        """A streamed call's forwarded bytes, then its ``StreamEnd``; a stream cut before its end raises."""
        url, data, headers = request
        with translated(upstream.name, call.request_id):
            async with self._http().post(url, data=data, headers=headers, timeout=timeout_for(upstream, True)) as resp:
                if resp.status != 200:
                    raw = await resp.read()
                    raise from_status(resp.status, raw, resp.headers.get("retry-after"), upstream.name,
                                      call.request_id)
                try:
                    async for data_in in resp.content.iter_any():
                        if out := relay.feed(data_in):
                            yield out
                finally:
                    if not relay.done:
                        resp.close()  # do not return a half-read connection to the pool
        if not relay.done:
            raise from_exception(ConnectionError("stream ended early"), upstream.name, call.request_id)
        if tail := relay.flush():
            yield tail
        yield StreamEnd(relay.usage)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class OpenAINativeClient(PooledClient):
    """``ProviderClient`` for OpenAI-compatible upstreams."""

    @staticmethod
    def _request(upstream: Upstream, call: ProviderCall) -> Request:
        p = upstream.entry.litellm_params
        body: dict[str, Any] = {**native_body(call.body), "model": p.model.split("/", 1)[1]}
        if body.get("stream"):
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        headers = {"content-type": "application/json", **call.headers}
        if key := resolve_secret(p.api_key):
            headers["authorization"] = f"Bearer {key}"
        return str(p.api_base).rstrip("/") + _PATHS[call.endpoint], orjson.dumps(body), headers

    async def complete(self, upstream: Upstream, call: ProviderCall) -> ProviderResult:
        raw = await self._post(upstream, call, self._request(upstream, call))
        payload = orjson.loads(raw)
        if isinstance(payload.get("usage"), dict):
            usage = usage_from(payload["usage"], upstream.prices)
            payload["usage"]["cost"] = usage.cost
            raw = orjson.dumps(payload)
        else:  # an upstream that reports no usage is charged an estimate, not nothing
            usage = estimated_usage(call.body, payload, upstream.prices)
        choices = payload.get("choices") or [{}]
        model = str(payload.get("model") or upstream.name)
        return ProviderResult(raw, usage, model, choices[0].get("finish_reason"))

    def stream(self, upstream: Upstream, call: ProviderCall) -> AsyncIterator[StreamItem]:
        return self._relayed(upstream, call, self._request(upstream, call),
                             SSERelay(upstream.prices, call.include_usage))
