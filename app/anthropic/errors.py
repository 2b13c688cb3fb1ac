"""RouteIQ's errors in Anthropic's envelope: ``{"type": "error", "error": {"type", "message"}}``.

The status is RouteIQ's own (``app.errors``); only the body's shape and type names are
Anthropic's, so the ``anthropic`` SDK raises the class it raises for that status
(``BadRequestError``, ``AuthenticationError``, ``RateLimitError``...). A stream that
already started ends with the same body as an ``error`` event: ``error_event`` turns the
OpenAI-shaped event that ``app.errors.sse_error_event`` writes into it. Like
``to_openai_error``, nothing here shows a traceback or an internal message.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.errors import to_openai_error

_BY_STATUS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
              404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
              503: "overloaded_error", 529: "overloaded_error"}
_BY_OPENAI_TYPE = {"invalid_request_error": "invalid_request_error", "authentication_error": "authentication_error",
                   "permission_error": "permission_error", "rate_limit_error": "rate_limit_error",
                   "service_unavailable": "overloaded_error"}
"""What a mid-stream OpenAI error event's ``type`` is in Anthropic's names (else ``api_error``)."""


def error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status (``api_error`` for every other 5xx)."""
    return _BY_STATUS.get(status, "invalid_request_error" if 400 <= status < 500 else "api_error")


def envelope(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def to_anthropic_error(err: BaseException) -> tuple[int, bytes, dict[str, str]]:
    """Map any exception to (status, Anthropic error JSON body, headers)."""
    status, body, headers = to_openai_error(err)  # the one place that decides status and message
    message = str(orjson.loads(body)["error"]["message"])
    return status, orjson.dumps(envelope(error_type(status), message)), headers


def error_event(openai_error: dict[str, Any]) -> bytes:
    """The Anthropic ``error`` SSE event for an OpenAI error object (``{"message", "type", ...}``)."""
    kind = _BY_OPENAI_TYPE.get(str(openai_error.get("type")), "api_error")
    body = envelope(kind, str(openai_error.get("message") or "the stream failed"))
    return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"


def anthropic_error_event(err: BaseException) -> bytes:
    """The Anthropic ``error`` SSE event ending a passed-through stream that failed after it started."""
    _, body, _ = to_anthropic_error(err)
    return b"event: error\ndata: " + body + b"\n\n"
