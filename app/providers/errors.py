"""Translate upstream failures (HTTP statuses, aiohttp and litellm errors) into RouteIQ's tree.

This is the one boundary where foreign errors become ``RouteIQError``s: clients wrap
their calls in ``translated(model)`` and map non-200 answers with ``from_status``.
"""

from __future__ import annotations

import asyncio
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

RETRYABLE_STATUS = frozenset({500, 502, 503, 504, 520, 529})


class RetryableUpstreamError(UpstreamError):
    """A 5xx or connection failure worth retrying (surfaces as 502 when retries run out)."""


def _message(body: bytes) -> str:
    try:
        parsed: Any = orjson.loads(body)
        msg = parsed.get("error", {}).get("message") if isinstance(parsed, dict) else None
    except (orjson.JSONDecodeError, AttributeError):
        msg = None
    return str(msg or body[:200].decode(errors="replace") or "no body")


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def from_status(status: int, body: bytes, retry_after: str | None, model: str) -> RouteIQError:
    """The error for an upstream's non-200 answer."""
    msg = f"{model}: upstream answered {status}: {_message(body)}"
    if status == 429:
        return RateLimitError(msg, retry_after=_retry_after(retry_after) or 1.0)
    if status in RETRYABLE_STATUS:
        return RetryableUpstreamError(msg, retry_after=_retry_after(retry_after))
    if status in (400, 413, 422):
        return InvalidRequestError(msg, code="upstream_rejected")
    return UpstreamError(msg)


def from_exception(err: BaseException, model: str) -> RouteIQError:
    """The error for an exception raised while calling an upstream."""
    if isinstance(err, RouteIQError):
        return err
    if isinstance(err, (TimeoutError, asyncio.TimeoutError)):
        return UpstreamTimeoutError(f"{model}: upstream did not answer in time")
    status = getattr(err, "status_code", None)
    if isinstance(status, int) and status >= 400:
        headers = getattr(getattr(err, "response", None), "headers", None) or {}
        return from_status(status, str(getattr(err, "message", err)).encode(), headers.get("retry-after"), model)
    if "Timeout" in type(err).__name__:
        return UpstreamTimeoutError(f"{model}: upstream did not answer in time")
    return RetryableUpstreamError(f"{model}: upstream connection failed ({type(err).__name__})")


@contextmanager
def translated(model: str) -> Iterator[None]:
    """Foreign exceptions raised inside become ``RouteIQError``s (cancellation passes)."""
    try:
        yield
    except RouteIQError:
        raise
    except Exception as err:  # noqa: BLE001  (aiohttp, litellm, sockets: all mapped here)
        raise from_exception(err, model) from None
