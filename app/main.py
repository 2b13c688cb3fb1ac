"""Builds the FastAPI app around an already-built ``Gateway``.

No clients are created here: the caller (the ingress deployment, or a test) builds
the gateway with ``app.wiring.build_gateway`` and passes it in; the app's lifespan
runs the gateway's ``start``/``close``. One set of exception handlers is the only place
where errors become HTTP responses, so no traceback ever reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.console import api as console_api
from app.console import pages as console_pages
from app.errors import InvalidRequestError, NotFoundError, RouteIQError
from app.gateway import Gateway
from app.http import error_response
from app.routes import (
    admin,
    config_sync,
    feedback,
    health,
    inference,
    messages,
    models,
    responses,
    router_info,
    spend,
)

log = logging.getLogger("routeiq.app")
Readiness = Callable[[tuple[str, int] | None], Awaitable[dict[str, Any]]]
"""Readiness detail, given the (host, port) of the server the probe came through."""


def _rid(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def _routeiq_error(request: Request, err: Exception) -> Response:
    return error_response(err, request)


async def _http_error(request: Request, err: Exception) -> Response:
    assert isinstance(err, StarletteHTTPException)
    if err.status_code == 404:
        mapped: RouteIQError = NotFoundError(f"Unknown path {request.url.path}", code="not_found")
    elif err.status_code == 405:
        mapped = InvalidRequestError(f"Method {request.method} is not allowed on {request.url.path}")
    else:
        mapped = RouteIQError(str(err.detail))
        mapped.status = err.status_code  # type: ignore[misc]
    return error_response(mapped, request)


async def _unexpected(request: Request, err: Exception) -> Response:
    if isinstance(err, RequestValidationError):
        return error_response(InvalidRequestError(str(err.errors()[0].get("msg"))), request)
    log.exception("unhandled error in request %s", _rid(request))
    return error_response(err, request)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the gateway with the replica; close it (flushing buffers) when it stops."""
    gateway: Gateway = app.state.gateway
    await gateway.start()
    try:
        yield
    finally:
        # Serve runs this from the replica's ``__del__``, after its drain: the first point
        # where the app learns of the shutdown. Readiness says 503 draining from here on.
        app.state.draining = True
        await gateway.close()


def create_app(gateway: Gateway, readiness: Readiness | None = None, *, echo_request_id: bool = True) -> FastAPI:
    """The ASGI app of the ingress; ``echo_request_id=False`` where a proxy in front
    already puts ``x-request-id`` on every response (Ray Serve's)."""
    openapi = "/openapi.json" if gateway.cfg.general_settings.expose_openapi else None
    app = FastAPI(title="RouteIQ", version="0.1.0", docs_url=None, redoc_url=None, openapi_url=openapi,
                  lifespan=_lifespan)
    app.state.gateway = gateway
    app.state.readiness = readiness
    app.state.draining = False
    app.state.echo_request_id = echo_request_id
    app.add_exception_handler(RouteIQError, _routeiq_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _unexpected)
    app.add_exception_handler(Exception, _unexpected)
    for module in (inference, messages, responses, models, health, admin, spend, feedback, router_info, config_sync,
                   console_api, console_pages):
        app.include_router(module.router)
    return app
