from __future__ import annotations

import asyncio

import orjson
import pytest

from app.errors import UpstreamError
from app.providers.base import Prices, StreamEnd, Usage
from app.providers.sse import SSERelay, coalesce

PRICES = Prices(input=1e-6, output=2e-6)
CHUNK = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
USAGE = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}\n\n'
DONE = b"data: [DONE]\n\n"


def test_relay_strips_usage_chunk_the_client_did_not_ask_for() -> None:
    relay = SSERelay(PRICES, include_usage=False)
    out = relay.feed(CHUNK + USAGE + DONE)
    assert out == CHUNK + DONE
    assert relay.usage is not None and relay.done
    assert (relay.usage.prompt_tokens, relay.usage.completion_tokens) == (3, 5)
    assert relay.usage.cost == pytest.approx(13e-6)


def test_relay_adds_cost_when_usage_is_asked() -> None:
    relay = SSERelay(PRICES, include_usage=True)
    out = relay.feed(USAGE)
    payload = orjson.loads(out.strip()[6:])
    assert payload["usage"]["cost"] == pytest.approx(13e-6)


def test_relay_handles_events_split_across_reads() -> None:
    relay = SSERelay(PRICES, include_usage=False)
    data = CHUNK + USAGE + DONE
    out = b"".join(relay.feed(data[i : i + 7]) for i in range(0, len(data), 7))
    assert out == CHUNK + DONE and relay.usage is not None


async def _source(items, delay: float = 0.0):
    for item in items:
        if isinstance(item, Exception):
            raise item
        yield item
        await asyncio.sleep(delay)


async def test_coalesce_merges_what_the_consumer_has_not_taken() -> None:
    items = [b"a", b"b", b"c", StreamEnd(Usage(1, 2, 0.0))]
    got = []
    async for item in coalesce(_source(items)):
        got.append(item)
        await asyncio.sleep(0.01)  # a slow consumer
    assert b"".join(x for x in got if isinstance(x, bytes)) == b"abc"
    assert len(got) < len(items) and got[-1] == items[-1]


async def test_coalesce_reraises_source_errors_after_the_data() -> None:
    got = []
    with pytest.raises(UpstreamError):
        async for item in coalesce(_source([b"a", UpstreamError("boom")])):
            got.append(item)
    assert got == [b"a"]


# Upstreams in the wild: the SSE spec's framing, usage however it is written, none at all.
SPACED_USAGE = b'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5}}\n\n'
STREAM = CHUNK + USAGE + DONE


def _relayed(relay: SSERelay, data: bytes, step: int) -> bytes:
    out = b"".join(relay.feed(data[i : i + step]) for i in range(0, len(data), step))
    return out + relay.flush()


@pytest.mark.parametrize("end", [b"\r\n", b"\r"], ids=["crlf", "cr"])
@pytest.mark.parametrize("step", [1, 2, 3, 7, 10_000])
def test_relay_frames_crlf_and_cr_streams_at_any_read_boundary(end: bytes, step: int) -> None:
    relay = SSERelay(PRICES, include_usage=False)
    out = _relayed(relay, STREAM.replace(b"\n", end), step)
    assert out == CHUNK + DONE  # line ends made LF, the usage event dropped as the client asked
    assert relay.done and relay.usage == Usage(3, 5, pytest.approx(13e-6))


def test_relay_charges_usage_written_with_spaces() -> None:
    relay = SSERelay(PRICES, include_usage=True)
    out = relay.feed(SPACED_USAGE + DONE)
    assert relay.usage is not None and (relay.usage.prompt_tokens, relay.usage.completion_tokens) == (3, 5)
    event = out.split(b"\n\n")[0]
    assert orjson.loads(event[6:])["usage"]["cost"] == pytest.approx(13e-6)


def test_relay_ignores_comments_and_joins_multi_line_data() -> None:
    relay = SSERelay(PRICES, include_usage=True)
    event = (b': keep-alive\nevent: usage\nid: 7\ndata: {"choices": [],\ndata:"usage":\n'
             b'data: {"prompt_tokens": 3, "completion_tokens": 5}}\n\n')
    out = relay.feed(b": ping\n\n" + CHUNK + event + b"data:[DONE]\n\n")
    assert relay.usage is not None and relay.usage.completion_tokens == 5 and relay.done
    assert out.startswith(b": ping\n\n" + CHUNK)  # forwarded untouched
    rewritten = out[len(b": ping\n\n" + CHUNK):].split(b"\n\n")[0].split(b"\n")
    assert rewritten[:2] == [b"event: usage", b"id: 7"]  # other fields kept, the comment dropped
    assert orjson.loads(rewritten[2][6:])["usage"] == {"prompt_tokens": 3, "completion_tokens": 5,
                                                       "cost": pytest.approx(13e-6)}


@pytest.mark.parametrize("text", [
    b'data: {"choices":[{"delta":{"content":"\\"usage\\": {"}}],"usage":null}\n\n',  # the word in content
    b'data: {"choices":[],"usage": null}\n\n',  # OpenAI writes usage:null on every chunk
    b'data: not json "usage": {\n\n',
    b'data: ["usage", {}]\n\n',
])
def test_relay_forwards_events_without_a_usage_object_untouched(text: bytes) -> None:
    relay = SSERelay(PRICES, include_usage=False)
    assert relay.feed(text + DONE) == text + DONE
    assert relay.usage is None and relay.done


def test_relay_reports_no_usage_when_the_upstream_sends_none() -> None:
    relay = SSERelay(PRICES, include_usage=True)
    assert relay.feed(CHUNK + DONE) == CHUNK + DONE
    assert relay.usage is None and relay.done


def test_done_is_only_the_data_of_an_event() -> None:
    relay = SSERelay(PRICES, include_usage=False)
    mention = b'data: {"choices":[{"delta":{"content":"data: [DONE]"}}]}\n\n'
    assert relay.feed(mention) == mention and not relay.done
    relay.feed(b"data: [DONE]\r\n\r\n")
    assert relay.done


def test_a_cr_at_the_end_of_a_read_and_a_lf_starting_the_next_are_one_line_end() -> None:
    relay = SSERelay(PRICES, include_usage=False)
    assert relay.feed(CHUNK[:-2] + b"\r") == b""
    assert relay.feed(b"\n\r") == CHUNK  # CRLF, then a CR: the blank line that ends the event
    assert relay.feed(b"\n") == b""  # ... and this LF is that CR's, not another line end
    assert relay.feed(DONE) == DONE
