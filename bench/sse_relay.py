"""In-process microbenchmark of ``SSERelay``, the per-chunk path of every native stream.

The gateway benchmark (``bench/gateway.py``) measures streams end to end, where the
relay is a small share of the time and the noise of a shared 2-core machine hides
it; this one feeds the relay alone, so a change to the relay shows. Shapes fed: the
fake upstream's (one event per read, usage only in the last event), OpenAI's (every
chunk carries ``"usage":null``), bursts (a whole stream in one read), and CRLF framing.
Times are CPU time (other work on a shared machine does not count), best of the rounds.

    python -m bench.sse_relay [--rounds N] [--baseline FILE]

``--baseline`` measures another ``SSERelay`` too, interleaved round by round with this
one (e.g. ``git show REV:app/providers/sse.py > /tmp/old_sse.py``). Results:
``bench/RESULTS-sse-relay.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from typing import Any

import orjson

from app.providers.base import Prices
from app.providers.sse import SSERelay

TOKENS = 50
STREAMS = 300
"""Streams per round and shape."""
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


def one_round(relay_cls: Any, events: list[bytes], burst: bool) -> float | None:
    """CPU microseconds per event over ``STREAMS`` streams; ``None`` if the relay missed
    the end of the stream or its usage (the old relay never frames CRLF)."""
    reads = [b"".join(events)] if burst else events
    start = time.process_time()
    for _ in range(STREAMS):
        relay = relay_cls(PRICES, include_usage=False)
        for data in reads:
            relay.feed(data)
        relay.flush()
        if not (relay.done and relay.usage is not None and relay.usage.completion_tokens == TOKENS):
            return None
    return (time.process_time() - start) / (STREAMS * len(events)) * 1e6


def _load(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("baseline_sse", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SSERelay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--baseline", help="a file defining another SSERelay, measured interleaved")
    args = parser.parse_args()
    relays = {"this": SSERelay} | ({"baseline": _load(args.baseline)} if args.baseline else {})
    for name, (events, burst) in SHAPES.items():
        best: dict[str, float | None] = dict.fromkeys(relays, float("inf"))
        for _ in range(args.rounds):
            for label, cls in relays.items():
                took, so_far = one_round(cls, events, burst), best[label]
                best[label] = None if took is None or so_far is None else min(so_far, took)
        cells = [f"{label} " + ("not relayed" if v is None else f"{v:5.2f}") for label, v in best.items()]
        print(f"{name:34s} " + "   ".join(cells) + "  us/event (CPU)")


if __name__ == "__main__":
    main()
