"""A benchmark gateway in its own process: ``python -m bench.serve_gateway URL PORT TRANSPORT``.

Serve settings come from the environment (``RAY_SERVE_THROUGHPUT_OPTIMIZED``,
``RAY_SERVE_ENABLE_HA_PROXY``), which must be set before Ray starts. Prints READY,
then serves until SIGTERM.
"""

from __future__ import annotations

import signal
import sys

import ray
from ray import serve

from app.config import parse_config
from deployments.graph import build_graph
from devtools.configs import gateway_config


def main() -> None:
    upstream, port, transport = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    cfg = gateway_config(upstream)
    for group in cfg["provider_groups"]:
        group["transport"] = transport if group["name"] != "slow" else "litellm"
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_graph(parse_config(cfg)), name="bench", route_prefix="/")
    print("READY", flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
