"""`model: auto` vs a concrete model, the scorer alone, idle CPU and PSS, against a bare
aiohttp pass-through: one run, on distinct prompts (issue #21).

``python -m bench.auto_vs_concrete [--before PATH]`` (``make bench`` runs it after
bench.gateway). For each checkout (this one, and ``--before`` in the order before, this):
start the gateway (bench/serve_config.py, the shipped learned router over the routing data's
nine models on a 0 ms fake upstream), measure idle CPU of its process tree over
``--idle`` seconds and PSS per process kind, then wrk at c=1/16/32 on a concrete model, on
``auto``, and on ``auto-static`` and ``auto-static-ingress`` (this checkout only: a router
on the static embedder, ``--static-artifact`` or trained here as ``routeiq train --embedder
static`` does, scored in the router-scoring replica and in the ingress). Every request
carries a distinct prompt (a real query of test.jsonl, 336 characters on average, prefixed
with a per-request counter), the concrete model's too, so the rows differ only by routing
and the prediction cache cannot fake the headline; one row repeats a single prompt (what
the cache does for repeats). CPU per request is the gateway's process tree's CPU time over
the requests served (psutil), so other load on the shared machine does not count. Writes
bench/RESULTS-auto.md and .png.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import orjson
import typer

from bench.loadgen import WrkResult, require_wrk, wrk
from bench.proctree import cpu_seconds, pss_by_kind
from bench.runs import commit_of, machine, start_gateway, start_served, stop_gateway
from devtools.configs import MASTER_KEY, learned_gateway_config
from devtools.servers import free_port, wait_port

HERE = Path(__file__).parent
ROOT = HERE.parent
QUERIES = Path("/work/shared/data/routing/test.jsonl")
CONCURRENCY = (1, 16, 32)
CONCRETE = "llama-3.1-8b-instruct"
SERVE_ENV = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_HA_PROXY": "0", "RAY_USAGE_STATS_ENABLED": "0",
             "PYTHONDONTWRITEBYTECODE": "1"}
"""Serve's settings for every Serve app measured here (the gateways and the Serve floor)."""
STATIC_ROUTERS = ("auto-static", "auto-static-ingress")
"""The static-embedder router scored in the router-scoring replica, and in the ingress (no hop)."""


@dataclass(frozen=True)
class Point:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float
    errors: int


def _queries() -> list[str]:
    path = QUERIES if QUERIES.exists() else ROOT / "router_models/data/routing/test.jsonl"
    return [json.loads(line)["query"] for line in path.read_text().splitlines() if line.strip()]


def _lua_distinct(model: str, queries: list[str], key: str, salt: str) -> str:
    """A wrk script sending ``queries`` in turn, each request's prompt made unique by a
    prefix of ``salt`` (one per measured point) and a per-thread counter (a cache sees no repeat)."""
    level = "=" * 8
    items = ",\n".join(f"[{level}[{orjson.dumps(q).decode()[1:-1]}]{level}]" for q in queries)
    head = orjson.dumps({"model": model, "messages": [{"role": "user", "content": ""}]}).decode()
    prefix, suffix = head.split('"content":""')
    return (f'local qs = {{\n{items}\n}}\nlocal n = 0\nlocal tid = 0\nlocal counter = 1\n'
            'function setup(thread) thread:set("tid", counter); counter = counter + 1 end\n'
            'function init(args) tid = tonumber(wrk.thread:get("tid")) or 0 end\n'
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {key}"\n'
            'function request()\n  n = n + 1\n'
            f"  local body = [{level}[{prefix}\"content\":\"{salt}-]{level}] .. tid .. \"-\" .. n .. \" \" .. "
            f"qs[(n % #qs) + 1] .. [{level}[\"{suffix}]{level}]\n"
            '  return wrk.format(nil, nil, nil, body)\nend\n')


def _wrk_script(url: str, script: str, connections: int, seconds: float) -> WrkResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    cmd = ["wrk", f"-t{1 if connections < 2 else 2}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           "--timeout", "30s", "--latency", "-s", f.name, url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    Path(f.name).unlink()
    from bench.loadgen import _ms

    pct = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)\s*$", out, re.M))
    errors = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return WrkResult(rps, _ms(pct["50"]), _ms(pct["99"]), errors)


def _measure(pid: int, fn, seconds: float) -> Point:  # type: ignore[no-untyped-def]
    before = cpu_seconds(pid)
    r: WrkResult = fn()
    used = cpu_seconds(pid) - before
    return Point(r.rps, r.p50_ms, r.p99_ms, used * 1000 / max(1.0, r.rps * seconds), r.errors)


def _distinct_point(pid: int, url: str, model: str, queries: list[str], connections: int, seconds: float) -> Point:
    """wrk on ``model`` with prompts no earlier point sent (a new salt), measured on ``pid``'s tree."""
    script = _lua_distinct(model, queries, MASTER_KEY, salt=f"{time.time_ns()}")
    return _measure(pid, lambda: _wrk_script(url, script, connections, seconds), seconds)


def _start(tree: Path, upstream: str, static: Path | None) -> tuple[subprocess.Popen[str], int]:
    env = {**SERVE_ENV, "PYTHONPATH": str(tree)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gateway.json"
        cfg = learned_gateway_config(upstream)
        if static is not None:  # a second learned router, on the static embedder
            auto = cfg["router_settings"]["routers"][0]
            cfg["router_settings"]["routers"] += [
                {**auto, "name": "auto-static", "artifact": str(static)},
                {**auto, "name": "auto-static-ingress", "artifact": str(static), "scoring": "ingress"}]
        path.write_text(json.dumps(cfg))
        proc, port = start_gateway(tree, path, env)
    time.sleep(3)
    return proc, port


def _run_tree(tree: Path, upstream: str, seconds: float, idle: float, queries: list[str],
              static: Path | None = None) -> dict[str, object]:
    proc, port = _start(tree, upstream, static)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    res: dict[str, object] = {}
    try:
        cpu0 = cpu_seconds(proc.pid)
        time.sleep(idle)
        res["idle_cores"] = (cpu_seconds(proc.pid) - cpu0) / idle
        res["pss"] = pss_by_kind(proc.pid)
        for c in CONCURRENCY:  # every point sends the same real queries, so the rows differ only by routing
            # MiniLM's `auto` last: saturating its scorer scales it up, and a replica starting takes CPU
            for name in (CONCRETE, *(STATIC_ROUTERS if static is not None else ()), "auto"):
                label = "concrete" if name == CONCRETE else name
                res[f"{label} c={c}"] = _distinct_point(proc.pid, url, name, queries, c, seconds)
        same = {"model": "auto", "messages": [{"role": "user", "content": queries[0]}]}
        res["auto, one repeated prompt c=16"] = _measure(proc.pid, lambda: wrk(url, same, MASTER_KEY, 16, seconds),
                                                         seconds)
    finally:
        stop_gateway(proc)
    return res


def _scorer_alone(queries: list[str], artifact: Path) -> dict[int, tuple[float, float]]:
    """Decisions/s and p50 per batch of a router in-process (embedder + head)."""
    from router_models.inference.learned import LearnedRouter

    router = LearnedRouter.load(artifact, num_threads=1)
    router.predict(["warm-up"])
    out = {}
    for batch in (1, 16):
        times = []
        for i in range(0, min(len(queries), 160), batch):
            t = time.perf_counter()
            router.predict(queries[i:i + batch])
            times.append(time.perf_counter() - t)
        times.sort()
        out[batch] = (batch * len(times) / sum(times), times[len(times) // 2] * 1000)
    return out


SETTLE_S = 20.0
BARE, SERVE_1HOP, SERVE_2HOP = "bare aiohttp pass-through", "Ray Serve, 1 hop", "Ray Serve, 2 hops"
"""The ceilings: no Ray at all; a Serve ingress calling the upstream; ingress -> handle -> a
deployment calling it (the gateway's concrete-model shape with none of its work)."""


def _ceilings(upstream: str, seconds: float, queries: list[str]) -> dict[str, dict[int, Point]]:
    """wrk at each concurrency on the three pass-throughs, with the concrete model's prompts.

    A Serve app is measured only after ``SETTLE_S``: Ray's own start-up work (agents, the
    controller's first rounds) takes the CPU for a while after the app is ready, and the
    gateways get longer (their idle measurement) before their first point.
    """
    out = {}
    for label, argv in ((BARE, lambda port: ["-m", "bench.passthrough", upstream, str(port)]),
                        (SERVE_1HOP, lambda port: [str(HERE / "serve_floor.py"), upstream, str(port), "1"]),
                        (SERVE_2HOP, lambda port: [str(HERE / "serve_floor.py"), upstream, str(port), "2"])):
        print(f"measuring {label}", flush=True)
        env = {} if label == BARE else {**SERVE_ENV, "PYTHONPATH": str(ROOT)}
        proc, port = start_served(ROOT, env, argv)
        try:
            time.sleep(0 if label == BARE else SETTLE_S)
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            out[label] = {c: _distinct_point(proc.pid, url, CONCRETE, queries, c, seconds) for c in CONCURRENCY}
        finally:
            stop_gateway(proc)
    return out


def _static_router(path: Path | None, work: Path) -> Path:
    """``path``, or a static-embedder ensemble router trained now on train.jsonl (~1.5 min)."""
    if path is not None:
        return path
    from router_models.static_embedding import static_config
    from router_models.training.pipeline import TrainConfig, train
    from router_models.training.progress import rich_progress

    out = work / "static-router"
    with rich_progress() as progress:
        train(TrainConfig(router_type="ensemble", data=QUERIES.with_name("train.jsonl"), out=out,
                          embedder=static_config()), progress)
    return out


def main(seconds: float = 5.0, idle: float = 60.0,
         before: Annotated[Path | None, typer.Option(help="Another checkout, measured in the same run.")] = None,
         static_artifact: Annotated[Path | None, typer.Option(
             help="A router trained with --embedder static (default: train one now).")] = None,
         ) -> None:
    require_wrk()
    queries = _queries()
    work = Path(tempfile.mkdtemp(prefix="bench-auto-"))
    static = _static_router(static_artifact, work)
    port = free_port()
    up = subprocess.Popen([sys.executable, "-m", "devtools.fake_upstream", "--port", str(port)], cwd=ROOT)
    wait_port(port)
    upstream = f"http://127.0.0.1:{port}/v1"
    runs: dict[str, dict[str, object]] = {}
    try:
        bare = _ceilings(upstream, seconds, queries)
        trees = [(f"before ({commit_of(before)})", before.resolve())] if before else []
        for label, tree in [*trees, (f"this ({commit_of(ROOT)})", ROOT)]:
            print(f"measuring {label}", flush=True)
            runs[label] = _run_tree(tree, upstream, seconds, idle, queries, static if tree == ROOT else None)
        from devtools.configs import ARTIFACT

        scorer = {"MiniLM (shipped)": _scorer_alone(queries, ARTIFACT), "static": _scorer_alone(queries, static)}
    finally:
        up.terminate()
    report = _report(bare, runs, scorer, seconds, idle)
    print(report)
    _plot(bare, runs, HERE / "auto.png")
    _write(HERE / "RESULTS-auto.md", report + "\n![auto vs concrete](auto.png)\n")


MARKER = "<!-- hand-written below: a re-run of bench.auto_vs_concrete rewrites only the part above -->"


def _write(path: Path, generated: str) -> None:
    """Replace the generated part of ``path``, keeping what was written below ``MARKER``."""
    old = path.read_text() if path.exists() else ""
    kept = old.split(MARKER, 1)[1] if MARKER in old else ("\n" + old if old else "\n")
    path.write_text(f"{generated}\n{MARKER}\n{kept.lstrip(chr(10))}")


def _report(ceilings: dict[str, dict[int, Point]], runs: dict[str, dict[str, object]],
            scorer: dict[str, dict[int, tuple[float, float]]], seconds: float, idle: float) -> str:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [f"# `auto` vs a concrete model, footprint ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)", "",
             f"- machine: {machine()}; load average at the end (1/5/15 min): {load}",
             f"- {seconds:g} s per point, wrk; `auto` on distinct prompts (500 test queries, each request "
             "prefixed with a unique counter); fake upstream at 0 ms; gateway = bench/serve_config.py, "
             "throughput-optimized, no HAProxy, the shipped learned router over the 9 routing models",
             f"- CPU ms/request: the gateway's process tree (psutil), idle CPU over {idle:g} s", "",
             "| checkout | point | RPS | p50 ms | p99 ms | CPU ms/req | errors |", "|---|---|---:|---:|---:|---:|---:|"]
    bare, floor = ceilings[BARE], ceilings[SERVE_2HOP]
    for name, rows in ceilings.items():
        lines += [f"| {name} | c={c} | {r.rps:.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.cpu_ms:.1f} | {r.errors} |"
                  for c, r in rows.items()]
    for label, res in runs.items():
        for name, p in res.items():
            if isinstance(p, Point):
                lines.append(f"| {label} | {name} | {p.rps:.0f} | {p.p50_ms:.2f} | {p.p99_ms:.2f} | "
                             f"{p.cpu_ms:.1f} | {p.errors} |")
    lines += ["", "Ratios (targets: auto/concrete RPS at c=16 >= 0.8; auto added p50 at c=1 <= 1.5x concrete's; "
              "concrete/bare RPS at c=32 >= 0.35; idle <= 0.05 cores; PSS <= 1200 MB):", "",
              "| checkout | auto/concrete RPS c=16 | auto/concrete p50 c=1 | "
              + "".join(f"{n}/concrete RPS c=16 | {n}/concrete p50 c=1 | " for n in STATIC_ROUTERS)
              + "concrete/bare RPS c=32 | serve-2-hops/bare c=32 | concrete/serve-2-hops c=32 | idle cores | PSS MB "
              "| processes |",
              "|---|---:|---:|" + "---:|" * (2 * len(STATIC_ROUTERS) + 6)]
    for label, res in runs.items():
        a16, c16 = res["auto c=16"], res["concrete c=16"]
        a1, c1, c32 = res["auto c=1"], res["concrete c=1"], res["concrete c=32"]
        assert isinstance(a16, Point) and isinstance(c16, Point) and isinstance(a1, Point)
        assert isinstance(c1, Point) and isinstance(c32, Point)
        pss = res["pss"]
        assert isinstance(pss, dict)
        add_a, add_c = a1.p50_ms - bare[1].p50_ms, c1.p50_ms - bare[1].p50_ms
        fast = " | ".join(_ratios(res.get(f"{n} c=16"), res.get(f"{n} c=1"), c16, add_c, bare[1].p50_ms)
                          for n in STATIC_ROUTERS)
        lines.append(f"| {label} | {a16.rps / c16.rps:.2f} | {add_a / max(add_c, 1e-9):.2f} | {fast} | "
                     f"{c32.rps / bare[32].rps:.2f} | {floor[32].rps / bare[32].rps:.2f} | "
                     f"{c32.rps / floor[32].rps:.2f} | {res['idle_cores']:.3f} | "
                     f"{sum(mb for _, mb in pss.values()):.0f} | {sum(n for n, _ in pss.values())} |")
    lines += ["", "PSS per process kind (MB, processes):", "", "| checkout | kind | processes | PSS MB |",
              "|---|---|---:|---:|"]
    for label, res in runs.items():
        pss = res["pss"]
        assert isinstance(pss, dict)
        for kind, (n, mb) in sorted(pss.items(), key=lambda kv: -kv[1][1]):
            lines.append(f"| {label} | {kind} | {n} | {mb:.0f} |")
    lines += ["", "The scorer alone (this checkout, in-process, 1 encoder thread, distinct test queries):", "",
              "| embedder | batch | decisions/s | p50 ms per batch |", "|---|---:|---:|---:|"]
    lines += [f"| {kind} | {b} | {dps:.0f} | {p50:.2f} |" for kind, rows in scorer.items()
              for b, (dps, p50) in rows.items()]
    return "\n".join(lines) + "\n"


def _ratios(s16: object, s1: object, c16: Point, add_c: float, bare_p50: float) -> str:
    """RPS at c=16 and added p50 at c=1 of a static router, as multiples of the concrete model's."""
    if not (isinstance(s16, Point) and isinstance(s1, Point)):
        return "- | -"
    return f"{s16.rps / c16.rps:.2f} | {(s1.p50_ms - bare_p50) / max(add_c, 1e-9):.2f}"


def _plot(ceilings: dict[str, dict[int, Point]], runs: dict[str, dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for (name, rows), shade in zip(ceilings.items(), ("black", "grey", "silver"), strict=True):
        ax.plot(list(rows), [r.rps for r in rows.values()], marker="o", c=shade, label=name)
    for label, res in runs.items():
        for kind, style in (("concrete", "-"), ("auto", "--"), ("auto-static", ":"), ("auto-static-ingress", "-.")):
            if f"{kind} c=1" not in res:
                continue
            pts = [res[f"{kind} c={c}"] for c in CONCURRENCY]
            ax.plot(list(CONCURRENCY), [p.rps for p in pts if isinstance(p, Point)], ls=style, marker="o",
                    label=f"{label}: {kind}")
    ax.set(yscale="log", xlabel="concurrency", ylabel="requests/s",
           title=f"auto (distinct prompts) vs concrete, {dt.datetime.now(dt.UTC):%Y-%m-%d}, {os.cpu_count()} cores")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    typer.run(main)
