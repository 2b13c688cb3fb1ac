"""The provider-call logic for one provider group: client choice, retries, timeouts.

The provider-call deployment is a thin shell around one ``ProviderCaller``. Retries
(exponential backoff with jitter, tenacity) cover 5xx and connection failures, and
for streams only the time before the first chunk: after that, a failure ends the
stream with an OpenAI-shaped error event in the ingress.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from app.config import GatewayConfig, ModelEntry
from app.errors import NotFoundError, UpstreamError, UpstreamTimeoutError
from app.providers.base import ProviderCall, ProviderClient, ProviderResult, StreamEnd, StreamItem
from app.providers.errors import RetryableUpstreamError
from app.providers.openai_native import OpenAINativeClient, is_native
from app.tracing import extract, headers_for, tracer

MAX_BACKOFF_S = 2.0


class _HonourRetryAfter:
    """Exponential backoff with jitter, but never sooner than the upstream's Retry-After."""

    def __init__(self, initial: float) -> None:
        # tenacity's default jitter is up to 1 s: scale it with the backoff instead.
        self._exp = wait_exponential_jitter(initial=initial, max=MAX_BACKOFF_S, jitter=initial)

    def __call__(self, state: RetryCallState) -> float:
        err = state.outcome.exception() if state.outcome else None
        after = getattr(err, "retry_after", None) or 0.0
        return max(self._exp(state), min(after, MAX_BACKOFF_S))


class ProviderCaller:
    """Calls the model entries of one provider group."""

    def __init__(self, cfg: GatewayConfig, group: str) -> None:
        settings = next(g for g in cfg.groups() if g.name == group)
        self._entries = {i: e for i, e in enumerate(cfg.model_list) if e.provider_group == group}
        self._native = OpenAINativeClient(settings.max_connections)
        self._use_native = settings.transport == "auto"
        self._litellm: ProviderClient | None = None
        self._retries = cfg.router_settings.num_retries
        self._backoff = cfg.router_settings.retry_backoff_s

    def _client(self, entry: ModelEntry) -> ProviderClient:
        if self._use_native and is_native(entry):
            return self._native
        if self._litellm is None:
            from app.providers.litellm_client import LiteLLMClient

            self._litellm = LiteLLMClient()
        return self._litellm

    def _entry(self, call: ProviderCall) -> ModelEntry:
        try:
            return self._entries[call.deployment]
        except KeyError:
            raise NotFoundError(f"deployment {call.deployment} is not served by this group") from None

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self._retries + 1),
            wait=_HonourRetryAfter(self._backoff),
            retry=retry_if_exception_type(RetryableUpstreamError),
            reraise=True,
        )

    def _timeout(self, entry: ModelEntry, call: ProviderCall) -> float:
        return min(entry.litellm_params.timeout or call.timeout_s, call.timeout_s)

    async def complete(self, call: ProviderCall) -> ProviderResult:
        """A non-streamed call, retried; 502 when retries run out, 504 on timeout."""
        entry = self._entry(call)
        with _provider_span(entry, call) as (span, traced):
            result = await self._complete(entry, traced)
            span.set_attributes(result.span_attributes())
            return result

    async def _complete(self, entry: ModelEntry, call: ProviderCall) -> ProviderResult:
        client = self._client(entry)
        try:
            async with asyncio.timeout(self._timeout(entry, call)):
                async for attempt in self._retrying():
                    with attempt:
                        return await client.complete(entry, call)
        except TimeoutError:
            limit = self._timeout(entry, call)
            raise UpstreamTimeoutError(f"{entry.model_name}: no answer within {limit:g} s") from None
        except RetryableUpstreamError as err:
            raise UpstreamError(err.message, retry_after=err.retry_after) from None
        raise AssertionError("unreachable")

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamItem]:
        """A streamed call; the wait for the first chunk is retried and time-limited."""
        entry = self._entry(call)
        client = self._client(entry)
        with _provider_span(entry, call) as (span, traced):
            source, first = await self._open_stream(entry, client, traced)
            try:
                yield first
                async for item in source:
                    if isinstance(item, StreamEnd):
                        span.set_attributes({"gen_ai.usage.input_tokens": item.usage.prompt_tokens,
                                             "gen_ai.usage.output_tokens": item.usage.completion_tokens})
                    yield item
            finally:
                await source.aclose()  # closes the upstream connection when the client left

    async def _open_stream(
        self, entry: ModelEntry, client: ProviderClient, call: ProviderCall
    ) -> tuple[AsyncGenerator[StreamItem, None], StreamItem]:
        try:
            async with asyncio.timeout(self._timeout(entry, call)):
                async for attempt in self._retrying():
                    with attempt:
                        source = aiter(client.stream(entry, call))
                        return source, await anext(source)
        except TimeoutError:
            limit = self._timeout(entry, call)
            raise UpstreamTimeoutError(f"{entry.model_name}: no first chunk within {limit:g} s") from None
        except RetryableUpstreamError as err:
            raise UpstreamError(err.message, retry_after=err.retry_after) from None
        except StopAsyncIteration:
            raise UpstreamError(f"{entry.model_name}: upstream sent an empty stream") from None
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._native.close()


@contextmanager
def _provider_span(entry: ModelEntry, call: ProviderCall) -> Iterator[tuple[Any, ProviderCall]]:
    """A client span for the upstream call, child of the request's; the upstream gets its context."""
    parent = extract(call.headers)
    attrs = {"gen_ai.operation.name": call.endpoint, "gen_ai.request.model": entry.model_name,
             "gen_ai.system": entry.litellm_params.model.split("/")[0], "routeiq.request_id": call.request_id,
             "routeiq.deployment": call.deployment}
    # Not made "current": a streamed call resumes across yields, where attaching and
    # detaching a context would cross tasks. The span is passed explicitly instead.
    span = tracer().start_span("routeiq.provider", context=parent, kind=SpanKind.CLIENT, attributes=attrs)
    headers = {**call.headers, **headers_for(trace.set_span_in_context(span), call.headers)}
    try:
        yield span, dataclasses.replace(call, headers=headers)
    except BaseException as err:
        span.set_status(Status(StatusCode.ERROR, str(err)[:200] or type(err).__name__))
        raise
    finally:
        span.end()
