"""The provider-call logic for one provider group: client choice, retries, deadlines, spans.

The provider-call deployment is a thin shell around one ``ProviderCaller``, bound with
its group's slice of the config (``ProviderSettings``). Retries (exponential backoff
with jitter, tenacity, never sooner than the upstream's Retry-After) cover 5xx and
connection failures, and for streams only the time before the first chunk: after
that, a failure ends the stream with an OpenAI-shaped error event in the ingress.

A ``messages`` call (an Anthropic Messages body, for an ``anthropic/`` entry) goes to the
native Anthropic client; other calls as below.

``transport=`` is the injection point (like httpx's): by default each entry goes to
the native pass-through or to litellm; a test passes a ``MockTransport`` and drives
retries, Retry-After, deadlines and stream errors without Serve or a network.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity import wait_exponential_jitter as _exp_jitter

from app.config import ModelEntry, ProviderSettings
from app.errors import InvalidRequestError, NotFoundError, UpstreamError, UpstreamTimeoutError
from app.providers.anthropic_native import AnthropicNativeClient, speaks_messages
from app.providers.base import (
    Prices,
    ProviderCall,
    ProviderClient,
    ProviderResult,
    StreamEnd,
    StreamItem,
    Upstream,
    next_item,
)
from app.providers.errors import RetryableUpstreamError
from app.providers.openai_native import OpenAINativeClient, is_native
from app.providers.responses_native import ResponsesNativeClient, speaks_responses
from app.tracing import extract, headers_for, tracer

MAX_BACKOFF_S = 2.0
Sleep = Callable[[float], Awaitable[None]]


class _HonourRetryAfter:
    """Exponential backoff with jitter, but never sooner than the upstream's Retry-After."""

    def __init__(self, initial: float) -> None:
        # tenacity's default jitter is up to 1 s: scale it with the backoff instead.
        self._exp = _exp_jitter(initial=initial, max=MAX_BACKOFF_S, jitter=initial)

    def __call__(self, state: RetryCallState) -> float:
        err = state.outcome.exception() if state.outcome else None
        after = getattr(err, "retry_after", None) or 0.0
        return max(self._exp(state), min(after, MAX_BACKOFF_S))


class ProviderCaller:
    """Calls the model entries of one provider group."""

    def __init__(self, settings: ProviderSettings, transport: ProviderClient | None = None,
                 sleep: Sleep = asyncio.sleep) -> None:
        self._settings = settings
        self._transport = transport
        self._sleep = sleep
        self._native: OpenAINativeClient | None = None
        self._anthropic: AnthropicNativeClient | None = None
        self._responses: ResponsesNativeClient | None = None
        self._litellm: ProviderClient | None = None
        self._upstreams: dict[int, Upstream] = {}
        if transport is None and any(not self._is_native(e) for e in settings.entries.values()):
            self._litellm_client()  # import litellm (seconds) with the replica, not in a request's deadline

    def _is_native(self, entry: ModelEntry) -> bool:
        return self._settings.group.transport == "auto" and is_native(entry)

    def _litellm_client(self) -> ProviderClient:
        if self._litellm is None:
            from app.providers.litellm_client import LiteLLMClient  # only where a model needs it

            self._litellm = LiteLLMClient()
        return self._litellm

    def _client(self, upstream: Upstream, call: ProviderCall) -> ProviderClient:
        if self._transport is not None:
            return self._transport
        if call.endpoint == "messages":
            return self._anthropic_client(upstream)
        if call.endpoint == "responses":
            return self._responses_client(upstream)
        if self._is_native(upstream.entry):
            if self._native is None:
                self._native = OpenAINativeClient(self._settings.group.max_connections,
                                                  public_only=self._settings.block_private_upstreams)
            return self._native
        return self._litellm_client()

    def _anthropic_client(self, upstream: Upstream) -> ProviderClient:
        """The native Messages client; only Anthropic entries of an ``auto`` group are called so."""
        if self._settings.group.transport != "auto" or not speaks_messages(upstream.entry):
            raise InvalidRequestError(f"{upstream.name} does not serve Anthropic's Messages API natively")
        if self._anthropic is None:
            self._anthropic = AnthropicNativeClient(self._settings.group.max_connections,
                                                    public_only=self._settings.block_private_upstreams)
        return self._anthropic

    def _responses_client(self, upstream: Upstream) -> ProviderClient:
        """The native Responses client; only entries whose upstream has that API, in an ``auto`` group."""
        if self._settings.group.transport != "auto" or not speaks_responses(upstream.entry):
            raise InvalidRequestError(f"{upstream.name} does not serve OpenAI's Responses API natively")
        if self._responses is None:
            self._responses = ResponsesNativeClient(self._settings.group.max_connections,
                                                    public_only=self._settings.block_private_upstreams)
        return self._responses

    def _upstream(self, call: ProviderCall) -> Upstream:
        """The entry a call names, priced once (litellm's cost map only when config has no price).
        A wildcard entry's call names its concrete model: that one is priced per call, not cached."""
        s = self._settings
        if call.entry is not None:  # the ingress's live entry (a config sync changed it): priced per call
            if call.entry.provider_group != s.group.name:
                raise NotFoundError(f"deployment {call.deployment} is not served by this group")
            return self._live_upstream(call, call.entry)
        if call.model is None and (found := self._upstreams.get(call.deployment)) is not None:
            return found
        entry = self._settings.entries.get(call.deployment)
        if entry is None:
            raise NotFoundError(f"deployment {call.deployment} is not served by this group")
        if call.model is not None:
            return self._live_upstream(call, entry)
        found = self._upstreams[call.deployment] = Upstream(call.deployment, entry, Prices.of(entry),
                                                            s.connect_timeout_s, s.stream_idle_timeout_s)
        return found

    def _live_upstream(self, call: ProviderCall, entry: ModelEntry) -> Upstream:
        """An upstream built for this call (a wildcard's concrete model, or a live entry), not cached."""
        if call.model is not None:
            if "*" not in entry.litellm_params.model:
                raise NotFoundError(f"deployment {call.deployment} is not a wildcard")
            params = entry.litellm_params.model_copy(update={"model": call.model})
            entry = entry.model_copy(update={"litellm_params": params})
        s = self._settings
        return Upstream(call.deployment, entry, Prices.of(entry), s.connect_timeout_s, s.stream_idle_timeout_s)

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self._settings.num_retries + 1),
            wait=_HonourRetryAfter(self._settings.retry_backoff_s),
            retry=retry_if_exception_type(RetryableUpstreamError),
            sleep=self._sleep,
            reraise=True,
        )

    @staticmethod
    def _limit(upstream: Upstream, call: ProviderCall) -> float:
        return min(upstream.entry.litellm_params.timeout or call.timeout_s, call.timeout_s)

    @asynccontextmanager
    async def _deadline(self, upstream: Upstream, call: ProviderCall, what: str) -> AsyncIterator[None]:
        """The call's whole deadline (retries included) and its one error translation."""
        limit = self._limit(upstream, call)
        try:
            async with asyncio.timeout(limit):
                yield
        except TimeoutError:
            raise UpstreamTimeoutError(f"{upstream.name}: no {what} within {limit:g} s") from None
        except RetryableUpstreamError as err:
            raise UpstreamError(err.message, retry_after=err.retry_after) from None

    async def complete(self, call: ProviderCall) -> ProviderResult:
        """A non-streamed call, retried; 502 when retries run out, 504 past the deadline."""
        upstream = self._upstream(call)
        client = self._client(upstream, call)
        with _provider_span(upstream, call) as (span, traced):
            async with self._deadline(upstream, traced, "answer"):
                async for attempt in self._retrying():
                    with attempt:
                        result = await client.complete(upstream, traced)
            span.set_attributes(result.span_attributes())
            return result

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamItem]:
        """A streamed call: the first chunk is retried and time-limited, then each gap is."""
        upstream = self._upstream(call)
        client = self._client(upstream, call)
        with _provider_span(upstream, call) as (span, traced):
            source, first = await self._open_stream(upstream, client, traced)
            try:
                yield first
                while (item := await next_item(source, upstream.stream_idle_timeout_s, upstream.name)) is not None:
                    if isinstance(item, StreamEnd) and item.usage is not None:
                        span.set_attributes({"gen_ai.usage.input_tokens": item.usage.prompt_tokens,
                                             "gen_ai.usage.output_tokens": item.usage.completion_tokens})
                    yield item
            finally:
                await source.aclose()  # closes the upstream connection when the client left

    async def _open_stream(
        self, upstream: Upstream, client: ProviderClient, call: ProviderCall
    ) -> tuple[AsyncGenerator[StreamItem, None], StreamItem]:
        async with self._deadline(upstream, call, "first chunk"):
            async for attempt in self._retrying():
                with attempt:
                    source: Any = aiter(client.stream(upstream, call))
                    try:
                        return source, await anext(source)
                    except StopAsyncIteration:
                        raise UpstreamError(f"{upstream.name}: upstream sent an empty stream") from None
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def close(self) -> None:
        for client in (self._native, self._anthropic, self._responses, self._litellm, self._transport):
            if client is not None:
                await client.close()


@contextmanager
def _provider_span(upstream: Upstream, call: ProviderCall) -> Iterator[tuple[Any, ProviderCall]]:
    """A client span for the upstream call, child of the request's; the upstream gets its context."""
    parent = extract(call.headers)
    entry = upstream.entry
    attrs: dict[str, str | int] = {"gen_ai.operation.name": call.endpoint, "gen_ai.request.model": entry.model_name,
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
