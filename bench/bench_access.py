"""Access-layer overhead: RPS and added latency with auth + limits + spend on vs off.

``python -m bench.bench_access`` starts the fake upstream (0 ms) and one Ray/Serve
instance holding two copies of the same gateway side by side:

- ``off``: master key only (``general_settings.access.enabled: false``), no limits, no spend;
- ``on``: a virtual key in a team, both with RPM, TPM and budget limits (set high so that
  nothing is refused), on real Redis and Postgres, spend written. Both servers are the
  benchmark's own (``devtools.services``: free ports, temp dirs, Postgres with durability
  on, as in production), never the machine's.

wrk measures each at concurrency 32 (and 1, for added latency), interleaved off/on
twice so that drift on a shared machine hits both. Then it checks that every request
of the ``on`` runs has its spend row, and writes ``bench/RESULTS-access.md``.
"""

from __future__ import annotations

import os

os.environ.setdefault("RAY_SERVE_THROUGHPUT_OPTIMIZED", "1")  # read when ray.serve is imported
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.loadgen import WrkResult, require_wrk, wrk
from bench.runs import machine
from devtools.configs import MASTER_KEY
from devtools.servers import free_port, wait_port
from devtools.services import PostgresServer, RedisServer

HERE = Path(__file__).parent
BODY = {"model": "mid-model", "messages": [{"role": "user", "content": "hello benchmark"}]}
LEAN = {"ray_actor_options": {"num_cpus": 0.1}}
HIGH = {"rpm_limit": 10_000_000, "tpm_limit": 1_000_000_000, "max_budget": 1e9}


def _config(upstream: str, access: dict[str, Any]) -> dict[str, Any]:
    def entry(name: str, price: float) -> dict[str, Any]:
        return {"model_name": name, "provider_group": "bench",
                "litellm_params": {"model": f"openai/{name}", "api_base": upstream, "api_key": "sk-up"},
                "model_info": {"input_cost_per_token": price / 1e6, "output_cost_per_token": price / 1e6}}

    return {"model_list": [entry("tiny-model", 0.1), entry("mid-model", 0.5)],
            "general_settings": {"master_key": MASTER_KEY, **access}}


def _deploy(upstream: str, database_url: str, redis_url: str) -> tuple[str, str]:
    import ray
    from ray import serve

    from app.config import parse_config
    from deployments.graph import build_graph

    port = free_port()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    overrides = {"Ingress": LEAN, "Provider-bench": LEAN}
    off = _config(upstream, {"access": {"enabled": False}})
    on = _config(upstream, {"database_url": database_url, "redis_url": redis_url,
                            "access": {"redis_prefix": "bench"}})
    serve.run(build_graph(parse_config(off), overrides=overrides), name="off", route_prefix="/off")
    serve.run(build_graph(parse_config(on), overrides=overrides), name="on", route_prefix="/on")
    wait_port(port)
    return f"http://127.0.0.1:{port}/off", f"http://127.0.0.1:{port}/on"


def _virtual_key(root: str) -> tuple[str, str]:
    admin = {"authorization": f"Bearer {MASTER_KEY}"}
    team = httpx.post(f"{root}/team/new", json={"team_alias": "bench", **HIGH}, headers=admin).json()
    key = httpx.post(f"{root}/key/generate", json={"team_id": team["team_id"], **HIGH}, headers=admin).json()
    return key["key"], key["key_id"]


def _spend_rows(pg: PostgresServer, db: str, key_id: str) -> int:
    return int(pg.psql(f"SELECT count(*) FROM routeiq_spend_logs WHERE key_id = '{key_id}'", db).strip())


def _row(name: str, c: int, r: WrkResult, base: WrkResult, direct: WrkResult) -> str:
    return (f"| {name} | {c} | {r.rps:.0f} | {r.rps / base.rps:.2f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
            f"{r.p50_ms - direct.p50_ms:+.2f} | {r.p50_ms - base.p50_ms:+.2f} | {r.errors} |")


def main(seconds: float = 10.0) -> None:
    require_wrk()
    up_port = free_port()
    upstream_proc = subprocess.Popen([sys.executable, "-m", "devtools.fake_upstream", "--port", str(up_port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(up_port)
    upstream = f"http://127.0.0.1:{up_port}/v1"
    redis, pg = RedisServer().start(), PostgresServer(durable=True).start()
    db = pg.create_database()
    try:
        off, on = _deploy(upstream, pg.url(db), redis.url())
        key, key_id = _virtual_key(on)
        for url, k in ((off, MASTER_KEY), (on, key)):  # warm both (connections, caches, JIT of the scripts)
            wrk(f"{url}/v1/chat/completions", BODY, k, 8, 2)
        rows_before = _spend_rows(pg, db, key_id)
        direct = {c: wrk(f"{upstream}/chat/completions", BODY, MASTER_KEY, c, seconds) for c in (1, 32)}
        runs: dict[str, dict[int, list[WrkResult]]] = {"off": {1: [], 32: []}, "on": {1: [], 32: []}}
        sent_on = 0
        for _ in range(2):
            for name, url, k in (("off", off, MASTER_KEY), ("on", on, key)):
                for c in (32, 1):
                    r = wrk(f"{url}/v1/chat/completions", BODY, k, c, seconds)
                    runs[name][c].append(r)
                    if name == "on":
                        sent_on += round(r.rps * max(1, round(seconds)))
        time.sleep(3)  # the last spend batch
        written = _spend_rows(pg, db, key_id) - rows_before
    finally:
        import ray

        ray.shutdown()
        upstream_proc.terminate()
        pg.close()
        redis.close()
    best = {n: {c: max(rs, key=lambda r: r.rps) for c, rs in cs.items()} for n, cs in runs.items()}
    lines = ["| policy | c | RPS | RPS vs off | p50 ms | p99 ms | added p50 vs direct | added p50 vs off | errors |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in (32, 1):
        lines.append(f"| direct to upstream | {c} | {direct[c].rps:.0f} | | {direct[c].p50_ms:.2f} | "
                     f"{direct[c].p99_ms:.2f} | | | {direct[c].errors} |")
        for name in ("off", "on"):
            lines.append(_row(name, c, best[name][c], best["off"][c], direct[c]))
    table = "\n".join(lines)
    report = (f"## Access layer overhead — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n\n"
              f"Machine: {machine()}; shared with other work. `python -m bench.bench_access`: one Ray instance, "
              f"the same gateway twice (`off`: master key only; `on`: virtual key in a team, RPM+TPM+budget on "
              f"key and team via one Redis Lua call, spend batched to Postgres); wrk, {seconds:g} s per point, "
              f"off/on interleaved twice, best of two shown. Fake upstream at 0 ms. Spend rows written for the "
              f"`on` runs: {written} (wrk reported ~{sent_on} requests, 2xx and non-2xx).\n\n{table}\n")
    print(report)
    (HERE / "RESULTS-access.md").write_text(
        "# Access layer benchmark (bench/bench_access.py)\n\n" + report)


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0)
