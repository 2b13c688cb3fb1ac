"""The ceiling for the gateway benchmarks: a bare aiohttp pass-through to the upstream.

``python -m bench.passthrough UPSTREAM PORT``: one ``aiohttp.ClientSession``, the request
body forwarded unchanged to ``UPSTREAM/chat/completions``, the answer returned unchanged. Prints READY, then serves.
No auth, no routing, no accounting: what any Python proxy on this machine cannot beat.
"""

from __future__ import annotations

import sys

import aiohttp
from aiohttp import web


def app(upstream: str) -> web.Application:
    application = web.Application()

    async def session_ctx(a: web.Application):  # type: ignore[no-untyped-def]
        a["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        yield
        await a["session"].close()

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        async with request.app["session"].post(f"{upstream}/chat/completions", data=body,
                                               headers={"content-type": "application/json"}) as resp:
            return web.Response(body=await resp.read(), status=resp.status, content_type="application/json")

    application.cleanup_ctx.append(session_ctx)
    application.router.add_post("/v1/chat/completions", forward)
    return application


if __name__ == "__main__":
    print("READY", flush=True)  # bench.runs.start_served then waits for the port
    web.run_app(app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), print=None, access_log=None)
