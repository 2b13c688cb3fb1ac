"""An S3-compatible server for tests and benchmarks: moto's, on a free loopback port.

It runs in a thread of the calling process (moto keeps its buckets in memory there), so
``stop()`` then ``start()`` on the same port is an outage the data survives: what tests
of "S3 down during sync" need. Replicas in other processes (Ray) reach it over HTTP at
``url``; any credentials are accepted. moto is a dev dependency: imported on start.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Self

from devtools.ports import free_port, port_open, wait_port


class S3Server:
    """moto's threaded S3 server on ``127.0.0.1:port``."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None

    def start(self) -> Self:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line per request
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        wait_port(self.port)
        return self

    def stop(self) -> None:
        """Stop listening (the buckets stay in memory for the next ``start``)."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        deadline = time.monotonic() + 10
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def client(self) -> Any:
        from router_models.registry.s3 import build_s3_client

        return build_s3_client(self.url, "us-east-1", timeout_s=2.0, max_attempts=1)

    def new_bucket(self) -> str:
        """A fresh, uniquely named bucket (each test or module its own)."""
        name = f"routeiq-test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name
