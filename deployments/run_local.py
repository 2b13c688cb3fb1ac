"""``serve run`` on a Ray of its own sized for one machine: what ``make run`` starts.

``python -m deployments.run_local configs/serve.demo.yaml`` starts a local Ray without
the dashboard and with slower background timers, then hands over to Ray's own
``serve run`` command in this process (it keeps an already started Ray: "Only initialize
ray if it has not happened yet"), so the config file means exactly what it means to
``serve run``. Nothing here builds the graph: ``deployments.graph`` does, from the file.

Why not plain ``serve run --address local``: its ``ray.init`` takes Ray's defaults, and
on a 2-core machine those cost, idle (bench/RESULTS-auto.md, "Ray's floor"):

* the dashboard head and its eight module processes, ~0.03-0.04 of a core and ~260 MB
  PSS. Nothing in RouteIQ needs them: metrics are exported by the dashboard *agent*,
  which still runs; ``serve status`` and Serve's REST API are what is lost (``serve
  status`` is the one to miss; the gateway's ``/health`` routes and console stand in).
* Serve's timers: the controller's loop runs every 100 ms and each handle exports its
  cached request metrics every 100 ms. ``ONE_MACHINE_ENV`` stretches both (0.5 s: a
  deploy, health check or autoscaling decision starts up to 0.4 s later; 1 s: Serve's
  own request metrics are 1 s coarser); an environment variable the operator set wins.
  Ray core's own timers (``raylet_report_resources_period_milliseconds`` and the like)
  were measured too and left alone: stretching them saved nothing measurable, and two
  of them (disabling the event-stats and debug dumps) made Serve's proxy fail its
  health checks at start.

A cluster (KubeRay) keeps Ray's defaults: its head runs the dashboard (the operator
deploys through it) and many nodes do read each other's reports.
"""

from __future__ import annotations

import os
import sys

ONE_MACHINE_ENV = {
    "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.5",
    "RAY_SERVE_METRICS_EXPORT_INTERVAL_MS": "1000",
}
"""Serve settings of the one-machine profile (environment: Serve reads them at import)."""



def main(argv: list[str]) -> None:
    """Start Ray for one machine, then run ``serve run ARGS`` in this process."""
    if not argv or argv[0] in {"-h", "--help"}:
        print("usage: python -m deployments.run_local SERVE_CONFIG.yaml [serve run options]", file=sys.stderr)
        raise SystemExit(2)
    for key, value in ONE_MACHINE_ENV.items():
        os.environ.setdefault(key, value)
    import ray
    from ray.serve._private.constants import SERVE_NAMESPACE
    from ray.serve.scripts import cli

    ray.init(address="local", namespace=SERVE_NAMESPACE, include_dashboard=False)
    cli.main(["run", *argv], prog_name="serve")


if __name__ == "__main__":
    main(sys.argv[1:])
