"""In-process microbenchmark of ``SSERelay``, the per-chunk path of every native stream.

The gateway benchmark (``bench/gateway.py``) measures streams end to end, where the
relay is a small share of the time and the noise of a shared 2-core machine hides
it; this one feeds the relay alone, so a change to the relay shows. Shapes fed: the
fake upstream's (one event per read, usage only in the last event), OpenAI's (every
chunk carries ``"usage":null``), bursts (a whole stream in one read), and CRLF framing.

    python -m bench.sse_relay [--streams N]
"""

from __future__ import annotations

import argparse
import time

import orjson

from app.providers.base import Prices
from app.providers.sse import SSERelay

TOKENS = 50
PRICES = Prices(1e-6, 2e-6)


def _events(null_usage: bool, sep: bytes) -> list[bytes]:
    base: dict[str, object] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                               "model": "m"}
    if null_usage:
        base["usage"] = None
    events = []
    for i in range(TOKENS):
        choice = {"index": 0, "delta": {"content": f" t{i}"}, "finish_reason": None}
        events.append(b"data: " + orjson.dumps({**base, "choices": [choice]}) + sep)
    usage = {**base, "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": TOKENS}}
    events.append(b"data: " + orjson.dumps(usage) + sep)
    events.append(b"data: [DONE]" + sep)
    return events


SHAPES = {
    "fake upstream, 1 event/read": (_events(False, b"\n\n"), False),
    "openai usage:null, 1 event/read": (_events(True, b"\n\n"), False),
    "whole stream in 1 read": (_events(False, b"\n\n"), True),
    "CRLF, 1 event/read": (_events(False, b"\r\n\r\n"), False),
}


def run(events: list[bytes], burst: bool, streams: int) -> float:
    """CPU microseconds per event, best of five rounds."""
    reads = [b"".join(events)] if burst else events
    best = float("inf")
    for _ in range(5):
        start = time.process_time()  # CPU time: other work on a shared machine does not count
        for _ in range(streams):
            relay = SSERelay(PRICES, include_usage=False)
            for data in reads:
                relay.feed(data)
            relay.flush()
            assert relay.done and relay.usage is not None and relay.usage.completion_tokens == TOKENS
        best = min(best, time.process_time() - start)
    return best / (streams * len(events)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=2000)
    args = parser.parse_args()
    for name, (events, burst) in SHAPES.items():
        try:
            print(f"{name:34s} {run(events, burst, args.streams):6.2f} us/event (CPU)")
        except AssertionError:
            print(f"{name:34s} not relayed (no [DONE] or no usage found)")


if __name__ == "__main__":
    main()
