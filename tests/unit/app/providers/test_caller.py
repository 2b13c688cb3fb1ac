"""``ProviderCaller`` through the in-process ``MockTransport``: retries, Retry-After,
deadlines, stream errors and the explicit connection timeouts, without Serve or a network."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from app.config import ProviderSettings, parse_config
from app.errors import InvalidRequestError, RateLimitError, UpstreamError, UpstreamTimeoutError
from app.providers.base import ProviderCall, StreamEnd, Upstream
from app.providers.caller import MAX_BACKOFF_S, ProviderCaller
from app.providers.mock import MockReply, MockTransport
from devtools.configs import MID, gateway_config

MID_INDEX = 1


def settings(**general: object) -> ProviderSettings:
    raw = gateway_config("http://127.0.0.1:1/v1", **general)
    raw["router_settings"]["num_retries"] = 2
    return parse_config(raw).provider_settings("small")


def call(timeout_s: float = 5.0) -> ProviderCall:
    return ProviderCall("chat", MID_INDEX, {"model": MID, "messages": [{"role": "user", "content": "hi"}]},
                        request_id="r1", timeout_s=timeout_s)


def scripted(*replies: MockReply) -> Callable[[Upstream, ProviderCall], MockReply]:
    """Answer with ``replies`` in turn, then with the last one forever."""
    left = list(replies)
    return lambda upstream, call: left.pop(0) if len(left) > 1 else left[0]


class Sleeps(list[float]):
    """Records the backoff waits instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


async def test_a_5xx_is_retried_with_backoff_then_succeeds() -> None:
    sleeps = Sleeps()
    transport = MockTransport(scripted(MockReply(status=500), MockReply(status=502), MockReply()))
    result = await ProviderCaller(settings(), transport, sleep=sleeps).complete(call())
    assert len(transport.calls) == 3 and result.usage.prompt_tokens == 3
    assert len(sleeps) == 2 and all(0 < s <= MAX_BACKOFF_S for s in sleeps)


async def test_retries_run_out_as_a_502_with_the_last_retry_after() -> None:
    transport = MockTransport(scripted(MockReply(status=503, retry_after="0.5")))
    with pytest.raises(UpstreamError) as info:
        await ProviderCaller(settings(), transport, sleep=Sleeps()).complete(call())
    assert info.value.status == 502 and len(transport.calls) == 3  # 1 try + num_retries=2


async def test_the_wait_honours_the_upstreams_retry_after() -> None:
    sleeps = Sleeps()
    transport = MockTransport(scripted(MockReply(status=503, retry_after="1.5"), MockReply()))
    await ProviderCaller(settings(), transport, sleep=sleeps).complete(call())
    assert sleeps == [pytest.approx(1.5, abs=0.2)] and sleeps[0] >= 1.5
    sleeps.clear()
    transport = MockTransport(scripted(MockReply(status=503, retry_after="60"), MockReply()))
    await ProviderCaller(settings(), transport, sleep=sleeps).complete(call())
    assert sleeps == [MAX_BACKOFF_S]  # capped: the fallback chain is a better use of the time


@pytest.mark.parametrize(("status", "error"), [(429, RateLimitError), (400, InvalidRequestError)])
async def test_client_side_failures_are_not_retried(status: int, error: type[Exception]) -> None:
    transport = MockTransport(scripted(MockReply(status=status, retry_after="7")))
    with pytest.raises(error):
        await ProviderCaller(settings(), transport, sleep=Sleeps()).complete(call())
    assert len(transport.calls) == 1


async def test_an_upstream_past_the_deadline_is_a_504() -> None:
    transport = MockTransport(scripted(MockReply(delay_s=3600)))
    with pytest.raises(UpstreamTimeoutError, match=r"no answer within 0\.05 s"):
        await ProviderCaller(settings(), transport).complete(call(timeout_s=0.05))


async def test_a_stream_error_after_the_first_chunk_surfaces_mid_stream() -> None:
    chunks = tuple(b'data: {"choices":[{"index":0,"delta":{"content":"t%d"}}]}\n\n' % i for i in range(4))
    transport = MockTransport(scripted(MockReply(chunks=chunks, fail_after=2)))
    items = aiter(ProviderCaller(settings(), transport, sleep=Sleeps()).stream(call()))
    got = [await anext(items), await anext(items)]
    assert got == list(chunks[:2])
    with pytest.raises(UpstreamError):  # not retried: the client has bytes already
        await anext(items)
    assert len(transport.calls) == 1


async def test_a_stream_failing_before_its_first_chunk_is_retried() -> None:
    transport = MockTransport(scripted(MockReply(status=500), MockReply()))
    items = [i async for i in ProviderCaller(settings(), transport, sleep=Sleeps()).stream(call())]
    assert len(transport.calls) == 2 and isinstance(items[-1], StreamEnd)


async def test_a_silent_stream_is_ended_after_the_idle_timeout() -> None:
    class Stalls(MockTransport):
        async def stream(self, upstream, call):  # type: ignore[no-untyped-def]
            yield b"data: {}\n\n"
            await asyncio.sleep(3600)

    caller = ProviderCaller(settings(stream_idle_timeout_s=0.05), Stalls(scripted(MockReply())))
    items = aiter(caller.stream(call()))
    await anext(items)
    with pytest.raises(UpstreamTimeoutError, match="silent"):
        await anext(items)


async def test_close_closes_the_transport() -> None:
    transport = MockTransport(scripted(MockReply()))
    caller = ProviderCaller(settings(), transport)
    await caller.complete(call())
    await caller.close()
    assert transport.closed


def test_native_client_timeouts_never_cut_a_long_stream() -> None:
    from app.providers.openai_native import timeout_for

    s = settings(connect_timeout_s=3, stream_idle_timeout_s=45)
    upstream = Upstream(MID_INDEX, s.entries[MID_INDEX], None, s.connect_timeout_s, s.stream_idle_timeout_s)  # type: ignore[arg-type]
    streamed, plain = timeout_for(upstream, True), timeout_for(upstream, False)
    assert streamed.total is None and plain.total is None  # not aiohttp's 300 s default
    assert streamed.connect == streamed.sock_connect == 3 and streamed.sock_read == 45
    assert plain.sock_read is None  # a non-streamed answer is bounded by the caller's deadline


@pytest.mark.parametrize(("reported", "counted"), [
    ({"prompt_tokens": 3, "completion_tokens": 4}, (3, 4)),
    ({"prompt_tokens": -50, "completion_tokens": -1e9}, (0, 0)),  # no refund of a budget
    ({"prompt_tokens": "12", "completion_tokens": None}, (0, 0)),
    ({"prompt_tokens": float("nan"), "completion_tokens": 1e30}, (0, 10**9)),
    ({"prompt_tokens": True}, (0, 0)),
    ("not an object", (0, 0)),
])
def test_reported_usage_is_sanitised(reported: object, counted: tuple[int, int]) -> None:
    from app.providers.base import Prices, usage_from

    usage = usage_from(reported, Prices(1e-6, 2e-6))  # type: ignore[arg-type]
    assert (usage.prompt_tokens, usage.completion_tokens) == counted
    assert usage.cost >= 0
