"""Routing decision latency and throughput through the router-scoring deployment.

``python -m bench.routing`` deploys the learned-router graph on a local Ray instance,
calls the ``RouterScoring`` handle (embed + score + decide, ``@serve.batch``) the way the
ingress does, at concurrency 1 and 32, on real test queries, and reports p50/p99 latency,
decisions/s and the scorer replica's memory (RSS) into ``bench/RESULTS-routing.md``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import statistics
import time
from pathlib import Path

import psutil
import typer
from rich.progress import Progress

from bench.runs import machine
from devtools.configs import learned_gateway_config
from devtools.servers import free_port
from router_models.data.loader import DEFAULT_TEST, load_prices
from router_models.inference.types import Candidate, RouteQuery

HERE = Path(__file__).parent


def _queries(n: int) -> list[str]:
    rows = [json.loads(line) for line in DEFAULT_TEST.read_text().splitlines()]
    return [r["query"] for r in rows[:n]]


async def _run(handle, queries: list[str], cands: tuple[Candidate, ...], concurrency: int,
               seconds: float) -> tuple[list[float], float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def worker() -> None:
        while time.perf_counter() < deadline:
            q = queries[next(counter) % len(queries)]
            start = time.perf_counter()
            await handle.route.remote(RouteQuery("auto", q, cands, 0.1))
            latencies.append((time.perf_counter() - start) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, len(latencies) / (time.perf_counter() - began)


def _scorer_rss_mb() -> float:
    for proc in psutil.process_iter(["cmdline"]):
        if any("RouterScoring" in part for part in proc.info["cmdline"] or []):
            return proc.memory_info().rss / 2**20
    return float("nan")


async def _main(seconds: float) -> str:
    import ray
    from ray import serve

    from app.config import parse_config
    from deployments.graph import ROUTER_SCORING, build_graph

    ray.init(address="local", num_cpus=8, include_dashboard=False, log_to_driver=False, configure_logging=False)
    serve.start(http_options={"host": "127.0.0.1", "port": free_port()})
    serve.run(build_graph(parse_config(learned_gateway_config("http://127.0.0.1:9/v1"))), name="routing",
              route_prefix="/routing")
    handle = serve.get_deployment_handle(ROUTER_SCORING, app_name="routing")
    prices = load_prices()
    cands = tuple(Candidate(m, prices[m]) for m in json.loads(
        (Path(__file__).resolve().parents[1] / "router_models/pretrained/default/manifest.json").read_text())["models"])
    queries = _queries(200)
    rows = ["| concurrency | decisions/s | p50 ms | p99 ms |", "|---|---|---|---|"]
    with Progress() as progress:
        task = progress.add_task("routing decisions", total=2)
        await _run(handle, queries, cands, 4, 3)  # warm-up
        for c in (1, 32):
            lat, rate = await _run(handle, queries, cands, c, seconds)
            q = statistics.quantiles(lat, n=100)
            rows.append(f"| {c} | {rate:.0f} | {statistics.median(lat):.1f} | {q[98]:.1f} |")
            progress.advance(task)
    rss = _scorer_rss_mb()
    serve.shutdown()
    ray.shutdown()
    return (f"# Routing decisions through RouterScoring — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n\n"
            f"Machine: {machine()}. Default artifact (router_models/pretrained/default), real test queries, "
            f"9 candidates, λ = 0.1; the handle is called as the ingress calls it (Ray Serve, "
            f"throughput-optimized), @serve.batch(max_batch_size=32).\n\n" + "\n".join(rows)
            + f"\n\nScorer replica RSS after the run: {rss:.0f} MB.\n")


def main(seconds: float = 10.0) -> None:
    """Measure and write bench/RESULTS-routing.md."""
    text = asyncio.run(_main(seconds))
    (HERE / "RESULTS-routing.md").write_text(text)
    print(text)


if __name__ == "__main__":
    typer.run(main)
