"""What a router version swap costs: promote → every scorer replica serving it, and latency
during the swap vs. steady state, under c=16 ``auto`` traffic.

``python -m bench.router_swap`` serves the learned-router config (the shipped router's nine
models, the fake upstream) with ``auto`` on an S3 registry (moto's server, a private Redis
for the download lock and the replicas' reports) and two ``RouterScoring`` replicas, in its
own process like ``make run`` (throughput-optimized, HAProxy in front). v1 is the shipped
router, v2 the same weights with another default λ (a new version, and visible in every
answer's ``x-routeiq-lambda``). 16 clients send ``auto`` requests back to back; after a
steady window the bench promotes v2, waits until both replicas report it on
``/router/info``, then rolls back the same way. Convergence is the last replica's
``loaded_at`` minus the time ``promote`` returned (same clock). Swap window: from the
pointer move to 1 s after the last replica swapped. Writes ``bench/RESULTS-router-swap.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.runs import commit_of, machine, start_gateway, stop_gateway
from devtools.configs import ARTIFACT, learned_gateway_config
from devtools.ports import free_port, wait_port
from devtools.registry import default_variant, new_registry
from devtools.s3_server import S3Server
from devtools.services import RedisServer
from router_models.registry.store import RouterRegistry

HERE = Path(__file__).parent
ROOT = HERE.parent
KEY = "sk-bench-master-0123456789"
CLIENTS = 16
STEADY_S = 15.0
AFTER_S = 5.0
POLL_S = 2.0


@dataclass
class Answer:
    started: float
    seconds: float
    status: str
    strategy: str = ""


@dataclass
class Load:
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, url: str) -> None:
        auth = {"authorization": f"Bearer {KEY}"}
        with httpx.Client(timeout=60) as http:
            while not self.stop.is_set():
                body = {"model": "auto", "max_tokens": 4,
                        "messages": [{"role": "user", "content": f"explain {uuid.uuid4().hex} briefly"}]}
                started = time.monotonic()
                try:
                    r = http.post(f"{url}/chat/completions", json=body, headers=auth)
                    answer = Answer(started, time.monotonic() - started, str(r.status_code),
                                    r.headers.get("x-routeiq-strategy", "").split(":")[0])
                except httpx.TransportError as err:
                    answer = Answer(started, time.monotonic() - started, type(err).__name__)
                with self.lock:
                    self.answers.append(answer)

    def window(self, start: float, end: float) -> list[Answer]:
        with self.lock:
            return [a for a in self.answers if start <= a.started < end]


def _stats(answers: list[Answer]) -> dict[str, float | int]:
    ms = sorted(a.seconds * 1000 for a in answers)
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return {"n": len(ms), "p50": q[49], "p95": q[94], "p99": q[98], "max": ms[-1] if ms else 0.0,
            "failed": sum(a.status != "200" for a in answers),
            "fallbacks": sum(a.status == "200" and a.strategy != "learned" for a in answers)}


def _start_gateway(config: Path, overrides: Path) -> tuple[subprocess.Popen[str], int]:
    env = {"PYTHONPATH": str(ROOT), "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_HA_PROXY": "1",
           "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", **BENCH_AWS}
    return start_gateway(ROOT, config, env, str(overrides))


def _replicas(base: str) -> list[dict[str, object]]:
    r = httpx.get(f"{base}/router/info", headers={"authorization": f"Bearer {KEY}"}, timeout=10)
    rows: list[dict[str, object]] = r.json()["routers"]["auto"]["replicas"] if r.status_code == 200 else []
    return rows


def _converge(base: str, version: str, timeout: float = 180.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _replicas(base)
        if len(rows) == 2 and all(r["version"] == version and r["healthy"] for r in rows):
            return rows
        time.sleep(0.25)
    raise TimeoutError(f"the replicas did not converge on {version}")


def _swap(base: str, load: Load, move: Callable[[], None], version: str) -> dict[str, object]:
    """Steady window, the move, convergence; the numbers of both windows."""
    steady_from = time.monotonic()
    time.sleep(STEADY_S)
    moved_wall, moved = time.time(), time.monotonic()
    move()
    rows = _converge(base, version)
    converged_s = max(float(r["loaded_at"]) for r in rows) - moved_wall  # type: ignore[arg-type]
    swap_end = moved + converged_s + 1.0
    time.sleep(max(0.0, swap_end - time.monotonic()) + AFTER_S)
    return {"converged_s": converged_s, "steady": _stats(load.window(steady_from, moved)),
            "swap": _stats(load.window(moved, swap_end))}


def _run(url: str, registry: RouterRegistry) -> list[tuple[str, dict[str, object]]]:
    base = url.removesuffix("/v1")
    _converge(base, "v1")
    load = Load()
    threads = [threading.Thread(target=load.client, args=(url,)) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        time.sleep(5)  # warm-up, not counted
        promoted = _swap(base, load, lambda: registry.promote("auto", "v2"), "v2")
        rolled = _swap(base, load, lambda: registry.rollback("auto"), "v1")
    finally:
        load.stop.set()
        for t in threads:
            t.join()
    return [("promote v1 → v2", promoted), ("rollback v2 → v1", rolled)]


def _table(results: list[tuple[str, dict[str, object]]]) -> str:
    rows = ["| move | all replicas serving after | window | requests | p50 ms | p95 ms | p99 ms | max ms | failed | "
            "fallbacks |", "|---|---|---|---|---|---|---|---|---|---|"]
    for move, r in results:
        for window in ("steady", "swap"):
            s: dict[str, float] = r[window]  # type: ignore[assignment]
            converged = f"{r['converged_s']:.1f} s" if window == "swap" else ""
            rows.append(f"| {move} | {converged} | {window} | {s['n']:.0f} | {s['p50']:.0f} | {s['p95']:.0f} | "
                        f"{s['p99']:.0f} | {s['max']:.0f} | {s['failed']:.0f} | {s['fallbacks']:.0f} |")
    return "\n".join(rows)


BENCH_AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
"""moto accepts any credentials; the bench (publishing) and the gateway's replicas use these."""


def main() -> None:
    os.environ.update(BENCH_AWS)
    load_before = os.getloadavg()[0]
    up_port = free_port()
    upstream = subprocess.Popen([sys.executable, "-m", "devtools.fake_upstream", "--port", str(up_port)], cwd=ROOT)
    s3, redis = S3Server().start(), RedisServer().start()
    proc = None
    try:
        wait_port(up_port)
        with tempfile.TemporaryDirectory() as tmp:
            registry = new_registry(s3)
            registry.publish(ARTIFACT)
            registry.publish(default_variant(Path(tmp) / "v2", 0.5))
            registry.promote("auto", "v1")
            cfg = learned_gateway_config(f"http://127.0.0.1:{up_port}/v1")
            auto = {**cfg["router_settings"]["routers"][0], "artifact": str(registry.location)}
            cfg["router_settings"] = {"routers": [auto], "registry": {
                "endpoint_url": s3.url, "poll_interval_s": POLL_S, "cache_dir": f"{tmp}/cache"}}
            cfg["general_settings"].update(master_key=KEY, redis_url=redis.url())
            (Path(tmp) / "gateway.json").write_text(json.dumps(cfg))
            two = {"min_replicas": 2, "max_replicas": 2, "upscale_delay_s": 1, "downscale_delay_s": 600}
            (Path(tmp) / "overrides.json").write_text(json.dumps({"RouterScoring": {"autoscaling_config": two}}))
            proc, port = _start_gateway(Path(tmp) / "gateway.json", Path(tmp) / "overrides.json")
            results = _run(f"http://127.0.0.1:{port}/v1", registry)
    finally:
        if proc is not None:
            stop_gateway(proc)
        upstream.terminate()
        s3.stop()
        redis.close()
    table = _table(results)
    print(table)
    header = (f"# Router version swap under load — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n\n"
              f"Machine: {machine()}. Commit {commit_of(ROOT)}. `python -m bench.router_swap` (docstring): two "
              f"RouterScoring replicas following an S3 registry (moto, loopback) with a {POLL_S:g} s poll "
              f"(±20 % jitter), Redis for the download lock and replica reports, {CLIENTS} clients sending `auto` "
              f"back to back through HAProxy; steady window {STEADY_S:g} s before each move. 'All replicas serving "
              "after': the last replica's swap minus the time the pointer moved (poll delay + download + load and "
              "warm-up of the router). 'fallbacks': answers not decided by the learned router. One run; load "
              f"average {load_before:.1f} before it started, {os.getloadavg()[0]:.1f} at its end (the machine is "
              "shared: latencies are noisy, the steady/swap pairs of one move are what compare).\n\n")
    (HERE / "RESULTS-router-swap.md").write_text(header + table + "\n")


if __name__ == "__main__":
    main()
