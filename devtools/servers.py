"""Small servers in background threads, and port helpers, for tests and benchmarks.

A ``ThreadedServer`` serves an aiohttp app on a free loopback port from its own event
loop, so a synchronous test (or a Ray Serve replica calling out) can reach it. It must
not be used for anything that outlives the process: it is a daemon thread. The port
helpers live in ``devtools.ports`` and are re-exported here.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Self

from aiohttp import web

from devtools.fake_upstream.faults import Faults
from devtools.fake_upstream.server import UPSTREAM, FakeUpstream, build_app
from devtools.ports import free_port, port_open, wait_port

__all__ = ["ThreadedFakeUpstream", "ThreadedServer", "free_port", "port_open", "wait_port"]


class ThreadedServer:
    """An aiohttp app on a free port, in a background thread with its own loop."""

    def __init__(self, app: web.Application) -> None:
        self.port = free_port()
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=0.5)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def start(self) -> Self:
        self._thread.start()
        wait_port(self.port)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


class ThreadedFakeUpstream(ThreadedServer):
    """The fake upstream (``devtools/fake_upstream``) on a free port."""

    def __init__(self, defaults: Faults | None = None) -> None:
        super().__init__(build_app(defaults))
        self.url = f"http://127.0.0.1:{self.port}/v1"

    @property
    def state(self) -> FakeUpstream:
        return self._app[UPSTREAM]
