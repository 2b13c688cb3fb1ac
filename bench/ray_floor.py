"""Ray's floor under ``make run``: idle CPU and PSS per process kind, per Ray profile (issue #21).

``python -m bench.ray_floor [--idle 60] [--rounds 2]`` starts the demo exactly as
``make run`` does (``scripts/run-demo.sh``: the demo config, HAProxy, the fake upstream
on :9100, the gateway on :8000; both ports must be free) once per profile, in the order
ray-defaults, one-machine, repeated ``--rounds`` times (ABAB): ``ray-defaults`` is plain
``serve run --address local`` (Ray's defaults: dashboard, 100 ms Serve timers),
``one-machine`` is ``deployments.run_local`` (what ``make run`` ships). For each start it
waits for readiness, lets start-up settle, then reads the CPU time and PSS of every
process of the demo's tree (the fake upstream excluded) over ``--idle`` seconds of no
traffic, and serves ``--seconds`` of wrk at c=16 and at c=1 on a concrete model, on
``cheapest`` and on ``auto`` (distinct prompts) for RPS, p50 and CPU ms per request; the
fake upstream alone at c=1 gives the p50 that "added latency" subtracts. ``cheapest`` is
the demo's cost-first router: a routed request (the routing span, the decision record,
exploration, the router's fallback chain) whose decision costs nothing, so it is the most
any learned ``auto`` can reach in the same gateway (issue #21's 0.8x target). Appends a
section to bench/RESULTS-auto.md.

``--lean-router PATH`` (a router trained with ``routeiq train --embedder static``) adds one
more start per round, ``one-machine, lean``: the demo with ``auto`` on that artifact and
every router scored in the ingress (``scoring: ingress``: no RouterScoring deployment) and
the nine models in one provider group (one Provider replica): the smallest gateway that still routes
``auto`` with a learned router, to say how close a configuration gets to the footprint
targets of issue #21. It is ``make run-lean``'s configuration, written by the same
``devtools.lean_demo.write_configs``.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
import typer

from bench.auto_vs_concrete import _lua_distinct, _queries, _wrk_script
from bench.loadgen import require_wrk
from bench.proctree import cpu_by_kind, pss_by_kind, stop_tree
from bench.runs import commit_of, machine
from devtools.lean_demo import write_configs

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("ray-defaults", "one-machine")
LEAN = "one-machine, lean"
URL = "http://127.0.0.1:8000"
UPSTREAM = "http://127.0.0.1:9100"
KEY = "sk-routeiq-demo"
SKIP = {"fake_upstream", "bash", "flock", "timeout"}


def _wait_ready(proc: subprocess.Popen[str], deadline_s: float = 300.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"bench: the demo exited ({proc.returncode}) before it was ready")
        try:
            if httpx.get(f"{URL}/health/readiness", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"bench: the demo was not ready within {deadline_s:.0f} s")


def _start(profile: str, serve_config: Path | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "ROUTEIQ_RAY_PROFILE": profile, "RAY_SERVE_ENABLE_HA_PROXY": "1",
           "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    for key in [k for k in env if k.startswith("RAY_SERVE_") and k not in {
            "RAY_SERVE_ENABLE_HA_PROXY", "RAY_SERVE_THROUGHPUT_OPTIMIZED"}]:
        del env[key]  # the profile decides Serve's timers, not the caller's shell
    if serve_config is not None:
        env["ROUTEIQ_SERVE_CONFIG"] = str(serve_config)
    return subprocess.Popen(["bash", "scripts/run-demo.sh"], cwd=ROOT, env=env, text=True, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _idle(pid: int, seconds: float) -> dict[str, float]:
    """Cores per process kind over ``seconds`` of no traffic."""
    before = cpu_by_kind(pid)
    time.sleep(seconds)
    after = cpu_by_kind(pid)
    return {k: (after[k] - before.get(k, 0.0)) / seconds for k in after if k not in SKIP}


MODELS = {"concrete": "llama-3.1-8b-instruct", "cheapest": "cheapest", "auto": "auto"}
"""What each start serves, by the label the report uses: a concrete model, the cost-first
router (a routed request with a free decision) and the learned ``auto``."""


@dataclass(frozen=True)
class Load:
    rps: float
    p50_ms: float
    cpu_ms: dict[str, float]
    """Gateway CPU ms per request, by process kind."""


def _load(pid: int, model: str, connections: int, seconds: float) -> Load:
    """wrk at ``connections`` on distinct prompts: RPS, p50 and CPU per request by process kind."""
    script = _lua_distinct(model, _queries(), KEY, f"{model}-{connections}-{time.monotonic_ns()}")
    before = cpu_by_kind(pid)
    r = _wrk_script(f"{URL}/v1/chat/completions", script, connections, seconds)
    after, served = cpu_by_kind(pid), max(1.0, r.rps * seconds)
    return Load(r.rps, r.p50_ms, {k: (after[k] - before.get(k, 0.0)) * 1000 / served for k in after if k not in SKIP})


def _upstream_p50(seconds: float) -> float:
    """p50 of the fake upstream alone at c=1 (what "added latency" subtracts)."""
    script = _lua_distinct(MODELS["concrete"], _queries(), KEY, f"direct-{time.monotonic_ns()}")
    return _wrk_script(f"{UPSTREAM}/v1/chat/completions", script, 1, seconds).p50_ms


def _one(profile: str, idle: float, seconds: float, serve_config: Path | None = None) -> dict[str, object]:
    label = LEAN if serve_config is not None else profile
    proc = _start(profile, serve_config)
    try:
        _wait_ready(proc)
        time.sleep(20)  # replicas' start-up work (warm-up, schema checks) is not idle
        cores = _idle(proc.pid, idle)
        pss = {k: v for k, v in pss_by_kind(proc.pid).items() if k not in SKIP}
        load = {(name, c): _load(proc.pid, model, c, seconds) for c in (16, 1) for name, model in MODELS.items()}
        direct = _upstream_p50(seconds)
    finally:
        stop_tree(proc, group=True)
    return {"profile": label, "cores": cores, "pss": pss, "load": load, "direct_p50": direct}


def main(idle: Annotated[float, typer.Option(help="Seconds of no traffic measured.")] = 60.0,
         seconds: Annotated[float, typer.Option(help="Seconds of wrk per model.")] = 10.0,
         rounds: Annotated[int, typer.Option(help="Rounds of (ray-defaults, one-machine).")] = 2,
         lean_router: Annotated[Path | None, typer.Option(
             help="A static-embedder router: adds the lean one-machine variant to each round.")] = None,
         out: Annotated[Path, typer.Option(help="Report to append to.")] = ROOT / "bench/RESULTS-auto.md") -> None:
    require_wrk()
    runs = []
    with tempfile.TemporaryDirectory(prefix="ray-floor-") as work:
        lean = write_configs(lean_router, Path(work), ROOT) if lean_router else None
        starts = [(p, None) for p in PROFILES] + ([("one-machine", lean)] if lean else [])
        for r in range(rounds):
            for profile, serve_config in starts:
                print(f"round {r + 1}/{rounds}: {LEAN if serve_config else profile}", flush=True)
                runs.append(_one(profile, idle, seconds, serve_config))
    with out.open("a") as f:
        f.write(_report(runs, idle, seconds))
    print(f"appended to {out}")


def _report(runs: list[dict[str, object]], idle: float, seconds: float) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_avg = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [f"\n## Ray's floor under `make run`, by Ray profile ({now}, {commit_of(ROOT)})\n",
             f"- machine: {machine()}; load average at the end: {load_avg}",
             f"- `python -m bench.ray_floor`: the demo as `make run` starts it, idle {idle:.0f} s, then "
             f"wrk for {seconds:.0f} s per model at c=16 and at c=1 (distinct prompts); the fake upstream "
             "is not counted. `cheapest` is the cost-first router: a routed request with a free decision\n",
             "| profile | idle cores | PSS MB | processes | RPS c=16: concrete / cheapest / auto "
             "| CPU ms/req c=16: concrete / cheapest / auto | cheapest / concrete RPS | auto / concrete RPS "
             "| auto / concrete added p50 c=1 |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        cores, pss, load, direct = run["cores"], run["pss"], run["load"], run["direct_p50"]
        assert isinstance(cores, dict) and isinstance(pss, dict) and isinstance(load, dict)
        assert isinstance(direct, float)
        hot = [load[(m, 16)] for m in MODELS]
        added = [load[(m, 1)].p50_ms - direct for m in ("concrete", "auto")]
        lines.append(f"| {run['profile']} | {sum(cores.values()):.3f} | {sum(mb for _, mb in pss.values()):.0f} "
                     f"| {sum(n for n, _ in pss.values())} | {' / '.join(f'{x.rps:.0f}' for x in hot)} "
                     f"| {' / '.join(f'{sum(x.cpu_ms.values()):.1f}' for x in hot)} "
                     f"| {hot[1].rps / hot[0].rps:.2f} | {hot[2].rps / hot[0].rps:.2f} "
                     f"| {added[1] / max(added[0], 1e-9):.2f} |")
    last = {str(run["profile"]): run for run in runs}
    lines += ["", "Idle cores and PSS per process kind (last round of each profile):", "",
              "| kind | " + " | ".join(f"{p} cores | {p} PSS MB" for p in last) + " |",
              "|---|" + "---:|" * (2 * len(last))]
    kinds = sorted({k for run in last.values() for k in run["pss"]},  # type: ignore[attr-defined]
                   key=lambda k: -max(run["cores"].get(k, 0.0) for run in last.values()))  # type: ignore[attr-defined]
    for k in kinds:
        cells = []
        for run in last.values():
            n, mb = run["pss"].get(k, (0, 0.0))  # type: ignore[attr-defined]
            cells.append(f"{run['cores'].get(k, 0.0):.4f} | {mb:.0f}" if n else "- | -")  # type: ignore[attr-defined]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    split = [line for p in ("one-machine", LEAN) for line in _split(last.get(p), p)]
    return "\n".join(lines + split) + "\n"


def _split(run: dict[str, object] | None, profile: str) -> list[str]:
    """Where a request's CPU goes, concrete vs ``auto``, per process kind (``profile``, last round)."""
    if run is None:
        return []
    load = run["load"]
    assert isinstance(load, dict)
    concrete, cheapest, auto = (load[(m, 16)].cpu_ms for m in MODELS)
    lines = ["", f"CPU ms per request by process kind at c=16 ({profile}, last round):", "",
             "| kind | concrete | cheapest | auto | auto - concrete |", "|---|---:|---:|---:|---:|"]
    for k in sorted(set(concrete) | set(auto), key=lambda k: -auto.get(k, 0.0)):
        c, f, a = concrete.get(k, 0.0), cheapest.get(k, 0.0), auto.get(k, 0.0)
        if max(c, a) >= 0.05:
            lines.append(f"| {k} | {c:.2f} | {f:.2f} | {a:.2f} | {a - c:+.2f} |")
    return lines


if __name__ == "__main__":
    typer.run(main)
