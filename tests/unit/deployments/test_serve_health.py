"""Readiness asks Serve's own /-/healthz of the server a probe came through."""

from __future__ import annotations

from aiohttp import web

from deployments.ingress import serve_health
from devtools.servers import ThreadedServer, free_port


def _server(status: int, text: str) -> ThreadedServer:
    app = web.Application()

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(status=status, text=text)

    app.router.add_get("/-/healthz", healthz)
    return ThreadedServer(app).start()


async def test_draining_replica_is_reported() -> None:
    server = _server(503, '"DRAINING"')
    try:
        assert await serve_health(("127.0.0.1", server.port)) == "draining"
    finally:
        server.stop()


async def test_healthy_and_unreachable() -> None:
    server = _server(200, "success")
    try:
        assert await serve_health(("0.0.0.0", server.port)) == "up"
    finally:
        server.stop()
    assert await serve_health(("127.0.0.1", free_port())) == "unreachable"
    assert await serve_health(None) == "unknown"
