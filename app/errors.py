"""The one error tree of RouteIQ, and its one mapping to OpenAI-shaped errors.

    RouteIQError                     500 internal_error (never shows a traceback)
    ├── InvalidRequestError          400 invalid_request_error
    │   ├── PayloadTooLargeError     413
    │   └── StoreDataError           400 invalid_value: the database refused a value
    ├── AuthenticationError          401 authentication_error
    ├── PermissionDeniedError        403 permission_error
    ├── NotFoundError                404 invalid_request_error / model_not_found
    ├── RateLimitError               429 rate_limit_error (+ retry_after)
    ├── OverloadedError              503 service_unavailable (+ retry_after)
    │   ├── StoreUnavailableError    503: the database is unreachable
    │   └── ReplicaUnavailableError  503: a deployment's replica died or cannot be reached
    ├── UpstreamError                502 upstream_error
    └── UpstreamTimeoutError         504 timeout

(``StoreDataError`` and ``StoreUnavailableError`` live in ``app.access.dberrors``, the
boundary that tells a refused value from an outage.)

Foreign errors (litellm, aiohttp, Ray) are translated where their client is called;
``to_openai_error`` is the only place that turns an error into a response body.
Exceptions stay picklable (plain ``args``): they cross Ray DeploymentHandles.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson


class RouteIQError(Exception):
    """Root of the tree: an error with an HTTP status and an OpenAI error type."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "internal_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, param, code, retry_after)
        self.message = message
        self.param = param
        self.code = code or self.default_code
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.param, self.code, self.retry_after))

    def headers(self) -> dict[str, str]:
        """HTTP headers that go with this error (Retry-After where known)."""
        if self.retry_after is None:
            return {}
        return {"retry-after": str(max(1, round(self.retry_after)))}


def _rebuild(cls: type[RouteIQError], message: str, param: Any, code: Any, retry: Any) -> RouteIQError:
    return cls(message, param=param, code=code, retry_after=retry)


class InvalidRequestError(RouteIQError):
    status = 400
    type = "invalid_request_error"


class PayloadTooLargeError(InvalidRequestError):
    status = 413
    default_code = "request_too_large"


class AuthenticationError(RouteIQError):
    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(RouteIQError):
    status = 403
    type = "permission_error"


class NotFoundError(RouteIQError):
    status = 404
    type = "invalid_request_error"
    default_code = "model_not_found"


class RateLimitError(RouteIQError):
    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class OverloadedError(RouteIQError):
    status = 503
    type = "service_unavailable"
    default_code = "overloaded"


class ReplicaUnavailableError(OverloadedError):
    """A replica of another deployment (provider, scorer) died or cannot be reached.

    Translated from Ray's errors where the handle is called (``deployments.ingress``); the
    gateway retries on another replica, then follows the fallback chain; if nothing can
    serve, the client gets this 503 with Retry-After, never a 500.
    """

    default_code = "replica_unavailable"


class UpstreamError(RouteIQError):
    status = 502
    type = "upstream_error"
    default_code = "upstream_failed"


class UpstreamTimeoutError(RouteIQError):
    status = 504
    type = "timeout"
    default_code = "upstream_timeout"


def to_openai_error(err: BaseException) -> tuple[int, bytes, dict[str, str]]:
    """Map any exception to (status, OpenAI error JSON body, headers)."""
    if not isinstance(err, RouteIQError):
        err = RouteIQError("internal error; see the gateway logs with the request id")
    body = {"error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code}}
    return err.status, orjson.dumps(body), err.headers()


def sse_error_event(err: BaseException) -> bytes:
    """The SSE event that ends a stream which already started when ``err`` happened."""
    _, body, _ = to_openai_error(err)
    return b"data: " + body + b"\n\ndata: [DONE]\n\n"
