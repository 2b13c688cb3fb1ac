"""The provider-call logic for one provider group: client choice, retries, timeouts.

The provider-call deployment is a thin shell around one ``ProviderCaller``. Retries
(exponential backoff with jitter, tenacity) cover 5xx and connection failures, and
for streams only the time before the first chunk: after that, a failure ends the
stream with an OpenAI-shaped error event in the ingress.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from app.config import GatewayConfig, ModelEntry
from app.errors import NotFoundError, UpstreamError, UpstreamTimeoutError
from app.providers.base import ProviderCall, ProviderClient, ProviderResult, StreamItem
from app.providers.errors import RetryableUpstreamError
from app.providers.openai_native import OpenAINativeClient, is_native


MAX_BACKOFF_S = 2.0


class _HonourRetryAfter:
    """Exponential backoff with jitter, but never sooner than the upstream's Retry-After."""

    def __init__(self, initial: float) -> None:
        self._exp = wait_exponential_jitter(initial=initial, max=MAX_BACKOFF_S)

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
            from app.providers.litellm_client import LiteLLMClient  # noqa: PLC0415 (heavy import)

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
        client = self._client(entry)
        try:
            async with asyncio.timeout(self._timeout(entry, call)):
                async for attempt in self._retrying():
                    with attempt:
                        return await client.complete(entry, call)
        except TimeoutError:
            raise UpstreamTimeoutError(f"{entry.model_name}: no answer within {self._timeout(entry, call):g} s") from None
        except RetryableUpstreamError as err:
            raise UpstreamError(err.message, retry_after=err.retry_after) from None
        raise AssertionError("unreachable")

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamItem]:
        """A streamed call; the wait for the first chunk is retried and time-limited."""
        entry = self._entry(call)
        client = self._client(entry)
        source, first = await self._open_stream(entry, client, call)
        try:
            yield first
            async for item in source:
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
            raise UpstreamTimeoutError(f"{entry.model_name}: no first chunk within {self._timeout(entry, call):g} s") from None
        except RetryableUpstreamError as err:
            raise UpstreamError(err.message, retry_after=err.retry_after) from None
        except StopAsyncIteration:
            raise UpstreamError(f"{entry.model_name}: upstream sent an empty stream") from None
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._native.close()
