from __future__ import annotations

import pickle

import orjson

from app.errors import (
    InvalidRequestError,
    PayloadTooLargeError,
    RateLimitError,
    RouteIQError,
    UpstreamTimeoutError,
    sse_error_event,
    to_openai_error,
)


def test_openai_shape_and_status() -> None:
    status, body, headers = to_openai_error(RateLimitError("slow down", retry_after=2.4))
    assert status == 429 and headers == {"retry-after": "2"}
    assert orjson.loads(body) == {"error": {"message": "slow down", "type": "rate_limit_error", "param": None,
                                            "code": "rate_limit_exceeded"}}
    assert to_openai_error(PayloadTooLargeError("big"))[0] == 413
    assert to_openai_error(UpstreamTimeoutError("late"))[0] == 504


def test_foreign_errors_hide_details() -> None:
    status, body, _ = to_openai_error(KeyError("secret internals"))
    assert status == 500 and b"secret internals" not in body


def test_errors_survive_pickling_across_handles() -> None:
    err = pickle.loads(pickle.dumps(InvalidRequestError("bad", param="temperature", code="x")))
    assert isinstance(err, InvalidRequestError) and err.param == "temperature" and err.code == "x"
    err = pickle.loads(pickle.dumps(RateLimitError("r", retry_after=3)))
    assert isinstance(err, RouteIQError) and err.retry_after == 3


def test_sse_error_event_ends_the_stream() -> None:
    event = sse_error_event(UpstreamTimeoutError("late"))
    first, done = event.strip().split(b"\n\n")
    assert orjson.loads(first[6:])["error"]["type"] == "timeout" and done == b"data: [DONE]"
