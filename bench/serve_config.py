"""Serve a gateway config in its own process, for benchmarks that compare code versions.

``python bench/serve_config.py CONFIG.json PORT APP [OVERRIDES.json]`` (run as a script, not a module, with
``PYTHONPATH`` naming the source tree to serve and ``cwd`` that tree: ``bench/chaos.py``
runs the same config on an older checkout this way). Serve settings come from the
environment; ``OVERRIDES.json`` (optional) maps deployment names to Serve options, as
``build_graph``'s ``overrides``. Prints READY, then serves until SIGTERM. Imports only ``app`` and
``deployments``, which exist in every version compared.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path


def main() -> None:
    config_path, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    import ray
    from ray import serve

    from app.config import parse_config
    from deployments.graph import build_graph

    cfg = parse_config(json.loads(Path(config_path).read_text()))
    overrides = json.loads(Path(sys.argv[4]).read_text()) if len(sys.argv) > 4 else None
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_graph(cfg, Path.cwd(), overrides), name=name, route_prefix="/")
    print("READY", flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
