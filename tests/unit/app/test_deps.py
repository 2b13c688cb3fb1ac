"""Every dependency of every route runs on the event loop, never in FastAPI's thread pool."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.config import parse_config
from app.main import create_app
from app.providers.pool import LocalProviderPool
from app.wiring import build_gateway
from devtools.configs import gateway_config


def _calls(dependant: Dependant) -> Iterator[object]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _routes(routes: list[object]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)  # an included router (FastAPI keeps it whole)
        if inner is not None:
            yield from _routes(inner.routes)


def test_no_route_has_a_sync_dependency(tmp_path: object) -> None:
    cfg = parse_config(gateway_config("http://127.0.0.1:1/v1", access={"sqlite_path": f"{tmp_path}/r.db"}))
    app = create_app(build_gateway(cfg, LocalProviderPool(cfg), None))
    routes = list(_routes(app.routes))
    sync = {(r.path, getattr(call, "__name__", str(call))) for r in routes for call in _calls(r.dependant)
            if not inspect.iscoroutinefunction(call)}
    assert len(routes) > 20 and not sync  # each one is a thread hop per request
