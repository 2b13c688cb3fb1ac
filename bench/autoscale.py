"""Autoscaling on queue depth, measured: replicas over time under load, then after it.

``python -m bench.autoscale`` starts the fake upstream with a slow answer (1 s), the
gateway on a local Ray instance with the shipped autoscaling settings
(deployments/graph.py), idles, drives wrk at high concurrency, idles again, and samples
the provider and router replica counts every 2 s. Writes
``bench/RESULTS-autoscaling.md`` (table, date, machine) and ``docs/autoscaling.png``.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from pathlib import Path

import typer
from rich.progress import Progress

from bench.gateway import PLAIN
from bench.loadgen import require_wrk, wrk
from bench.runs import machine
from devtools.configs import MASTER_KEY, gateway_config
from devtools.servers import free_port, wait_port

ROOT = Path(__file__).resolve().parents[1]
WATCHED = ("Provider-small", "RouterScoring", "Ingress")


def _replicas(app: str) -> dict[str, int]:
    from ray import serve

    status = serve.status().applications.get(app)
    if status is None:
        return {}
    return {name: int(d.replica_states.get("RUNNING", 0)) for name, d in status.deployments.items() if name in WATCHED}


def main(before: int = 10, load: int = 60, after: int = 100, connections: int = 192, latency_ms: int = 1000) -> None:
    """Idle ``before`` s, load ``load`` s with wrk, idle ``after`` s; sample replicas every 2 s."""
    require_wrk()
    import ray
    from ray import serve

    from app.config import parse_config
    from deployments.graph import build_graph

    up_port = free_port()
    upstream = subprocess.Popen([sys.executable, "-m", "devtools.fake_upstream", "--port", str(up_port),
                                 "--latency-ms", str(latency_ms)])
    wait_port(up_port)
    ray.init(address="local", num_cpus=8, include_dashboard=False, log_to_driver=False, configure_logging=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    cfg = parse_config(gateway_config(f"http://127.0.0.1:{up_port}/v1"))
    serve.run(build_graph(cfg), name="scale", route_prefix="/")
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    samples: list[tuple[float, str, dict[str, int]]] = []
    result: list = []
    t0 = time.monotonic()
    total = before + load + after
    driver = threading.Timer(before, lambda: result.append(wrk(url, PLAIN, MASTER_KEY, connections, load)))
    driver.start()
    try:
        with Progress() as progress:
            task = progress.add_task("autoscaling timeline", total=total)
            while (elapsed := time.monotonic() - t0) < total:
                phase = "load" if before <= elapsed < before + load else "idle"
                samples.append((elapsed, phase, _replicas("scale")))
                progress.update(task, completed=min(elapsed, total))
                time.sleep(2)
        driver.join()
    finally:
        serve.shutdown()
        ray.shutdown()
        upstream.terminate()
    _report(samples, result[0] if result else None, connections, latency_ms, load)


def _report(samples: list, load_result, connections: int, latency_ms: int, load: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = ["| t (s) | phase | " + " | ".join(WATCHED) + " |", "|---|---|" + "---|" * len(WATCHED)]
    for t, phase, counts in samples[::2]:
        rows.append(f"| {t:.0f} | {phase} | " + " | ".join(str(counts.get(n, 0)) for n in WATCHED) + " |")
    fig, ax = plt.subplots(figsize=(9, 4))
    for name in WATCHED:
        ax.step([s[0] for s in samples], [s[2].get(name, 0) for s in samples], where="post", label=name)
    loaded = [s[0] for s in samples if s[1] == "load"]
    if loaded:
        ax.axvspan(min(loaded), max(loaded), color="orange", alpha=0.15, label=f"wrk c={connections}")
    ax.set(xlabel="seconds", ylabel="running replicas", title="Serve autoscaling on queue depth (local Ray)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(ROOT / "docs/autoscaling.png", dpi=110)
    summary = (f"wrk c={connections} for {load} s against a {latency_ms} ms upstream: "
               f"{load_result.rps:.0f} RPS, p50 {load_result.p50_ms:.0f} ms, p99 {load_result.p99_ms:.0f} ms, "
               f"errors {load_result.errors}." if load_result else "load generator failed")
    text = (f"# Autoscaling timeline — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n\nMachine: {machine()}. "
            f"{summary}\n\nSettings: deployments/graph.py (providers: target_ongoing_requests 64, 1-4 replicas; "
            "router: 16, 1-2; upscale delay 5 s, downscale delay 60 s).\n\n" + "\n".join(rows)
            + "\n\n![autoscaling](../docs/autoscaling.png)\n")
    (ROOT / "bench/RESULTS-autoscaling.md").write_text(text)
    print(text)


if __name__ == "__main__":
    typer.run(main)
