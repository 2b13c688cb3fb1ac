"""Ray Serve's own floor for the gateway's shape: the same pass-through as bench/passthrough.py,
served by Serve, for the concrete-vs-bare ratio of issue #21.

``python bench/serve_floor.py UPSTREAM PORT HOPS`` (run as a script, as bench/serve_config.py
is, with the same Ray and Serve settings) deploys a FastAPI ingress (``serve.ingress``) that
forwards the request body to ``UPSTREAM/chat/completions`` over one aiohttp session and
returns the answer unchanged:

* ``HOPS=1``: the ingress calls the upstream itself (the least any Serve app does);
* ``HOPS=2``: the ingress hands the body to a second deployment through a
  ``DeploymentHandle`` and that one calls the upstream: the gateway's concrete-model path
  (ingress, provider-call deployment) with nothing else, no auth, no limits, no accounting.

Both use the gateway's deployment options (``INGRESS_OPTIONS``/``PROVIDER_OPTIONS``
without autoscaling), so the bench's ``concrete / serve-2hop`` ratio is what RouteIQ's own
work costs and ``serve-2hop / bare`` what Ray Serve costs before RouteIQ does anything.
Prints READY, then serves until SIGTERM.
"""

# No ``from __future__ import annotations``: FastAPI reads ``request: Request`` off the
# function, and this module reaches the replicas pickled by value, where a string
# annotation no longer resolves.
import os
import signal
import sys
from typing import Any

import aiohttp
import ray
from fastapi import FastAPI, Request, Response
from ray import serve

from deployments.graph import INGRESS_OPTIONS, PROVIDER_OPTIONS


def _options(base: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in base.items() if k != "autoscaling_config"} | {"num_replicas": 1}


class _Forwarder:
    """One pooled aiohttp session to the upstream, as the gateway's native pass-through holds."""

    def __init__(self, upstream: str) -> None:
        self._url, self._session = f"{upstream}/chat/completions", None

    async def forward(self, body: bytes) -> bytes:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        async with self._session.post(self._url, data=body, headers={"content-type": "application/json"}) as resp:
            return await resp.read()


@serve.deployment(name="FloorProvider", **_options(PROVIDER_OPTIONS))
class FloorProvider(_Forwarder):
    async def __call__(self, body: bytes) -> bytes:
        return await self.forward(body)


api = FastAPI()


@serve.deployment(name="FloorIngress", **_options(INGRESS_OPTIONS))
@serve.ingress(api)
class FloorIngress(_Forwarder):
    def __init__(self, upstream: str, provider: Any = None) -> None:
        super().__init__(upstream)
        self._provider = provider

    @api.post("/v1/chat/completions")
    async def chat(self, request: Request) -> Response:
        body = await request.body()
        out = await (self._provider.remote(body) if self._provider is not None else self.forward(body))
        return Response(out, media_type="application/json")


def main() -> None:
    upstream, port, hops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    provider = FloorProvider.bind(upstream) if hops == 2 else None
    serve.run(FloorIngress.bind(upstream, provider), name="floor", route_prefix="/")
    print("READY", flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    os._exit(0)  # no Ray shutdown (it waited ~60 s here): bench.runs.stop_gateway kills the tree


if __name__ == "__main__":
    main()
