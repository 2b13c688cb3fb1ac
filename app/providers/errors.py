"""Translate upstream failures (HTTP statuses, aiohttp and litellm errors) into RouteIQ's tree.

This is the one boundary where foreign errors become ``RouteIQError``s: clients wrap
their calls in ``translated(model, request_id)`` and map non-200 answers with
``from_status``. An upstream's own error text is never reflected to the client (it can
carry internal hostnames, account ids, fragments of other requests): the client gets the
status class and a safe message, and the full text is logged here with the request id.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from app.errors import (
    InvalidRequestError,
    RateLimitError,
    RouteIQError,
    UpstreamError,
    UpstreamTimeoutError,
)

log = logging.getLogger("routeiq.providers")
RETRYABLE_STATUS = frozenset({500, 502, 503, 504, 520, 529})


class RetryableUpstreamError(UpstreamError):
    """A 5xx or connection failure worth retrying (surfaces as 502 when retries run out)."""


CONTEXT_WINDOW_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "content_filter"})


def _rejection_code(body: bytes) -> str:
    """``context_length_exceeded`` / ``content_policy_violation`` when the upstream's error says
    so (its ``code`` or ``type``, as OpenAI and Azure write them), else ``upstream_rejected``."""
    try:
        parsed: Any = orjson.loads(body)
        err = parsed.get("error") if isinstance(parsed, dict) else None
        said = {str(err.get("code")), str(err.get("type"))} if isinstance(err, dict) else set()
    except orjson.JSONDecodeError:
        said = set()
    if said & CONTEXT_WINDOW_CODES or b"ContextWindowExceeded" in body or b"context_length_exceeded" in body:
        return "context_length_exceeded"
    if said & CONTENT_POLICY_CODES or b"ContentPolicyViolation" in body:
        return "content_policy_violation"
    return "upstream_rejected"


def _message(body: bytes) -> str:
    try:
        parsed: Any = orjson.loads(body)
        msg = parsed.get("error", {}).get("message") if isinstance(parsed, dict) else None
    except (orjson.JSONDecodeError, AttributeError):
        msg = None
    return str(msg or body[:200].decode(errors="replace") or "no body")


MAX_RETRY_AFTER_S = 3600.0


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds), bounded; ``None`` if absent or odd."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_S)


def from_status(status: int, body: bytes, retry_after: str | None, model: str, request_id: str = "") -> RouteIQError:
    """The error for an upstream's non-200 answer (its text logged, not returned)."""
    log.warning("request %s: %s answered %d: %s", request_id or "-", model, status, _message(body)[:500])
    if status == 429:
        return RateLimitError(f"{model}: the upstream's rate limit was reached",
                              retry_after=_retry_after(retry_after) or 1.0)
    if status in RETRYABLE_STATUS:
        return RetryableUpstreamError(f"{model}: the upstream failed ({status})",
                                      retry_after=_retry_after(retry_after))
    if status in (400, 413, 422):
        return InvalidRequestError(f"{model}: the upstream rejected the request ({status}); "
                                   "check the request's parameters for this model", code=_rejection_code(body))
    return UpstreamError(f"{model}: the upstream answered {status}")


def from_exception(err: BaseException, model: str, request_id: str = "") -> RouteIQError:
    """The error for an exception raised while calling an upstream."""
    if isinstance(err, RouteIQError):
        return err
    if isinstance(err, (TimeoutError, asyncio.TimeoutError)):
        return UpstreamTimeoutError(f"{model}: upstream did not answer in time")
    status = getattr(err, "status_code", None)
    if isinstance(status, int) and status >= 400:
        headers = getattr(getattr(err, "response", None), "headers", None) or {}
        return from_status(status, str(getattr(err, "message", err)).encode(), headers.get("retry-after"), model,
                           request_id)
    if "Timeout" in type(err).__name__:
        return UpstreamTimeoutError(f"{model}: upstream did not answer in time")
    return RetryableUpstreamError(f"{model}: upstream connection failed ({type(err).__name__})")


@contextmanager
def translated(model: str, request_id: str = "") -> Iterator[None]:
    """Foreign exceptions raised inside become ``RouteIQError``s (cancellation passes)."""
    try:
        yield
    except RouteIQError:
        raise
    except Exception as err:  # noqa: BLE001  (aiohttp, litellm, sockets: all mapped here)
        raise from_exception(err, model, request_id) from None
