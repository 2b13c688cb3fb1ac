"""Gateway overhead benchmark: added latency and throughput vs calling the upstream directly.

``python -m bench.gateway`` (or ``make bench``) starts the fake upstream at 0 ms, then
each Serve configuration in turn, measures plain requests with wrk at several
concurrencies and 50-token streams (time to first token, streams/s), and writes
``bench/RESULTS.md`` (date and machine noted) and ``bench/gateway.png``.
``--before PATH`` also measures another checkout (e.g. a worktree of an earlier commit)
in the same run, interleaved with this one, so a change is judged on ratios from one run.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from bench.loadgen import StreamResult, WrkResult, require_wrk, streams, wrk
from bench.runs import commit_of, machine, start_gateway, stop_gateway
from devtools.configs import MASTER_KEY, gateway_config
from devtools.servers import free_port, wait_port

HERE = Path(__file__).parent
ROOT = HERE.parent
CONCURRENCY = (1, 8, 32, 64)
STREAM_CONCURRENCY = (1, 16)
PLAIN = {"model": "mid-model", "messages": [{"role": "user", "content": "hello benchmark"}]}
STREAM = {**PLAIN, "stream": True, "messages": [{"role": "user", "content": "hello [[fake tokens=50]]"}]}


@dataclass(frozen=True)
class Variant:
    name: str
    env: dict[str, str]
    transport: str = "auto"


VARIANTS = (
    Variant("serve defaults", {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "0", "RAY_SERVE_ENABLE_HA_PROXY": "0"}),
    Variant("throughput-optimized", {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_HA_PROXY": "0"}),
    Variant("throughput-optimized + HAProxy (shipped)",
            {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_HA_PROXY": "1"}),
    Variant("shipped, litellm transport",
            {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_HA_PROXY": "1"}, "litellm"),
)


@dataclass
class Measured:
    plain: dict[int, WrkResult] = field(default_factory=dict)
    stream: dict[int, StreamResult] = field(default_factory=dict)


def _best(a: Measured | None, b: Measured) -> Measured:
    """Per point, the better of two runs of one configuration (the machine's speed drifts)."""
    if a is None:
        return b
    return Measured({c: max(a.plain[c], b.plain[c], key=lambda r: r.rps) for c in b.plain},
                    {c: max(a.stream[c], b.stream[c], key=lambda r: r.streams_per_s) for c in b.stream})


def _measure(url: str, seconds: float, progress: Progress, label: str) -> Measured:
    m = Measured()
    task = progress.add_task(label, total=len(CONCURRENCY) + len(STREAM_CONCURRENCY))
    for c in CONCURRENCY:
        m.plain[c] = wrk(f"{url}/chat/completions", PLAIN, MASTER_KEY, c, seconds)
        progress.advance(task)
    for c in STREAM_CONCURRENCY:
        m.stream[c] = streams(f"{url}/chat/completions", STREAM, MASTER_KEY, c, seconds)
        progress.advance(task)
    return m


def _config(upstream: str, transport: str, folder: Path) -> Path:
    cfg = gateway_config(upstream)
    for group in cfg["provider_groups"]:
        group["transport"] = transport if group["name"] != "slow" else "litellm"
    path = folder / f"gateway-{transport}.json"
    path.write_text(json.dumps(cfg))
    return path


def _start_gateway(variant: Variant, upstream: str, tree: Path = ROOT) -> tuple[subprocess.Popen[str], int]:
    """The gateway of ``tree`` (this checkout or another) in its own process (bench/serve_config.py)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(upstream, variant.transport, Path(tmp))
        proc, port = start_gateway(tree, config, {**variant.env, "RAY_USAGE_STATS_ENABLED": "0",
                                                  "PYTHONPATH": str(tree)})
    time.sleep(2)  # let the replicas settle (HAProxy reloads its config)
    return proc, port





def _table(direct: Measured, results: dict[str, Measured]) -> str:
    rows = ["| configuration | c | RPS | p50 ms | p99 ms | added p50 ms | errors |", "|---|---|---|---|---|---|---|"]
    for name, m in {"direct to upstream": direct, **results}.items():
        for c, r in m.plain.items():
            added = r.p50_ms - direct.plain[c].p50_ms
            rows.append(f"| {name} | {c} | {r.rps:.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {added:+.2f} | {r.errors} |")
    rows += ["", "Streams of 50 tokens (fake upstream at 0 ms; Python aiohttp client measuring first byte):", "",
             "| configuration | c | streams/s | TTFT p50 ms | TTFT p99 ms | added TTFT p50 ms | total p50 ms "
             "| errors |",
             "|---|---|---|---|---|---|---|---|"]
    for name, m in {"direct to upstream": direct, **results}.items():
        for c, s in m.stream.items():
            added = s.ttft_p50_ms - direct.stream[c].ttft_p50_ms
            rows.append(f"| {name} | {c} | {s.streams_per_s:.1f} | {s.ttft_p50_ms:.2f} | {s.ttft_p99_ms:.2f} | "
                        f"{added:+.2f} | {s.total_p50_ms:.2f} | {s.errors} |")
    return "\n".join(rows)


def _plot(direct: Measured, results: dict[str, Measured], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, m in results.items():
        ax1.plot(list(m.plain), [r.rps for r in m.plain.values()], marker="o", label=name)
        ax2.plot(list(m.plain), [r.p50_ms - direct.plain[c].p50_ms for c, r in m.plain.items()], marker="o", label=name)
    ax1.axhline(160, ls="--", c="grey", label="target 160 RPS")
    ax1.axhline(80, ls=":", c="red", label="LiteLLM proxy ~80 RPS")
    ax1.set(xscale="log", xlabel="concurrency", ylabel="requests/s", title="Throughput (plain chat)")
    ax2.set(xscale="log", yscale="log", xlabel="concurrency", ylabel="ms", title="Added p50 latency vs direct")
    ax1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(seconds: float = 5.0, only: str = "",
         before: Annotated[Path | None, typer.Option(help="Another checkout, measured in the same run.")] = None,
         ) -> None:
    """Run every configuration (or those whose name contains ``only``) and write the report."""
    require_wrk()
    console = Console()
    port = free_port()
    upstream_proc = subprocess.Popen([sys.executable, "-m", "devtools.fake_upstream", "--port", str(port)])
    wait_port(port)
    upstream = f"http://127.0.0.1:{port}/v1"
    results: dict[str, Measured] = {}
    try:
        with Progress(console=console) as progress:
            direct = _measure(upstream, seconds, progress, "direct to upstream")
            old = (f" (before: {commit_of(before)})", before.resolve()) if before else None
            # With --before: before, this, this, before (ABBA), best of two per point, so
            # neither checkout always runs first on a machine whose speed drifts.
            trees = [old, ("", ROOT), ("", ROOT), old] if old else [("", ROOT)]
            for variant in (v for v in VARIANTS if only in v.name):
                for suffix, tree in trees:
                    proc, gw_port = _start_gateway(variant, upstream, tree)
                    try:
                        name = variant.name + suffix
                        run = _measure(f"http://127.0.0.1:{gw_port}/v1", seconds, progress, name)
                        results[name] = _best(results.get(name), run)
                    finally:
                        stop_gateway(proc)
    finally:
        upstream_proc.terminate()
    table = _table(direct, results)
    print(table)
    _plot(direct, results, HERE / "gateway.png")
    header = (f"## Gateway overhead — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n\n"
              f"Machine: {machine()}. One run, {seconds:g} s per point, wrk for plain requests. "
              "Fake upstream at 0 ms on the same machine.\n\n"
              "Configurations: `serve defaults` (Python proxy actor, no throughput mode), "
              "`throughput-optimized` (`RAY_SERVE_THROUGHPUT_OPTIMIZED=1`: direct ingress, gRPC between "
              "deployments, user code on the main loop), `+ HAProxy` (`RAY_SERVE_ENABLE_HA_PROXY=1`, what "
              "`make run` ships), and the same with every model called through the litellm SDK "
              "(`transport: litellm`). All run the full request path: auth, the embedded access layer "
              "(in-process limits, SQLite spend), metrics. Targets for this machine: added p50 <= 8 ms at "
              "c=1, >= 160 RPS at c=32; streams <= 60 ms added to first token and >= 45 streams/s at c=16 "
              "(LiteLLM proxy measured here: +15.5 ms, ~80 RPS, +235 ms, 22.5 streams/s).\n\n"
              + (f"`(before: …)` rows: the same configuration on commit {commit_of(before)}, measured in this run; "
                 "each checkout ran twice in the order before, this, this, before, and each point is the "
                 "better of its two runs (the ratios between rows of one run are what compare).\n\n" if before else "")
              + (f"Only the configurations matching `{only}` were run this time; the others' last "
                 "measurement is in this file's git history.\n\n" if only else ""))
    (HERE / "RESULTS.md").write_text("# Benchmark results\n\n" + header + table + "\n\n![gateway](gateway.png)\n"
                                     "\n`auto` vs a concrete model, idle CPU and PSS per process kind, the scorer "
                                     "alone and a bare aiohttp ceiling: [RESULTS-auto.md](RESULTS-auto.md) "
                                     "(`python -m bench.auto_vs_concrete`, also run by `make bench`).\n")


if __name__ == "__main__":
    typer.run(main)
