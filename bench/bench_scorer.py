"""Microbenchmark of the routing decision in-process: embed + score (+ decide).

Measures what the router-scoring replica spends per request, without Ray or HTTP:
latency p50/p99 at batch 1 and throughput at batch 8 and 32, on real test queries, and
the resident memory of the process after loading and predicting. Writes a markdown
table (date, machine) to ``bench/RESULTS-scorer.md``.

It also splits a batch-1 decision's CPU into its stages (embed, the head's prediction,
decide) twice: back to back, and with the CPU caches emptied before each decision (a
64 MB sweep, outside the timed part). A gateway process does other work between two
decisions, so its decisions run somewhere between the two: part of the router's arrays (a
KNN bank of 5,008 x 384 float32 is 7.7 MB) comes from memory, not cache. The sweep also
empties L3, so the second is the worst case.

    python bench/bench_scorer.py [--router-dir DIR] [--threads N] [--n 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import subprocess
import time
from pathlib import Path

import numpy as np
from rich.progress import Progress

from deployments.router_sync import one_blas_thread
from router_models.data import DEFAULT_TEST, load_routing_data
from router_models.inference.decide import decide
from router_models.inference.learned import LearnedRouter
from router_models.inference.types import Candidate

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(router_dir: Path, n: int, threads: int | None) -> list[dict[str, object]]:
    one_blas_thread()  # as every process that scores does (its docstring says why)
    t0 = time.perf_counter()
    router = LearnedRouter.load(router_dir, num_threads=threads)
    load_s = time.perf_counter() - t0
    queries = load_routing_data(DEFAULT_TEST).queries
    sample = [queries[i] for i in np.random.default_rng(0).choice(len(queries), n, replace=False)]
    cands = [Candidate(m, p) for m, p in router.prices.items()]
    router.predict(sample[:8])  # warm-up

    def decision(batch: list[str]) -> None:
        for row in router.predict(batch):
            decide(dict(zip(router.models, row.tolist(), strict=True)), cands, router.default_lambda)

    rows: list[dict[str, object]] = []
    with Progress() as progress:
        task = progress.add_task("batch 1 latency", total=n)
        lat = []
        for q in sample:
            start = time.perf_counter()
            decision([q])
            lat.append((time.perf_counter() - start) * 1e3)
            progress.advance(task)
        rows.append(
            {
                "batch": 1,
                "p50_ms": np.percentile(lat, 50),
                "p99_ms": np.percentile(lat, 99),
                "per_s": 1e3 / np.mean(lat),
            }
        )
        for bs in (8, 32):
            task = progress.add_task(f"batch {bs} throughput", total=n)
            lat = []
            start_all = time.perf_counter()
            for i in range(0, n - bs + 1, bs):
                start = time.perf_counter()
                decision(sample[i : i + bs])
                lat.append((time.perf_counter() - start) * 1e3)
                progress.advance(task, bs)
            done = (n // bs) * bs
            rows.append(
                {
                    "batch": bs,
                    "p50_ms": np.percentile(lat, 50),
                    "p99_ms": np.percentile(lat, 99),
                    "per_s": done / (time.perf_counter() - start_all),
                }
            )
    rows.append({"stages": {"warm": stages(router, sample, cands, cold=False),
                            "cold": stages(router, sample, cands, cold=True)}})
    rows.append(
        {
            "load_s": load_s,
            "rss_mb": rss_mb(),
            "router_type": router.router_type,
            "embedder": router.manifest["embedder"],
        }
    )
    return rows


def stages(router: LearnedRouter, sample: list[str], cands: list[Candidate], *, cold: bool) -> dict[str, float]:
    """Mean CPU ms (this thread) per batch-1 decision in each stage; ``cold``: caches swept first."""
    sweep = np.ones(64 * 2**20 // 8)
    totals = dict.fromkeys(("embed", "predict", "decide"), 0.0)
    assert router.embedder is not None
    for q in sample:
        if cold:
            sweep.sum()
        t0 = time.thread_time()
        x = router.embedder.embed([q])
        t1 = time.thread_time()
        row = router.predict_embeddings(x)[0]
        t2 = time.thread_time()
        decide(dict(zip(router.models, row.tolist(), strict=True)), cands, router.default_lambda)
        t3 = time.thread_time()
        for k, d in zip(totals, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            totals[k] += d
    return {k: v / len(sample) * 1e3 for k, v in totals.items()}


def write_markdown(rows: list[dict[str, object]], out: Path, router_dir: Path, threads: int | None, n: int) -> str:
    meta = rows[-1]
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    lines = [
        f"# Scorer microbenchmark ({dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')})",
        "",
        f"- machine: `nproc`={nproc}, CPU: {cpu_model()}, Python {platform.python_version()}",
        f"- router: `{router_dir}` ({meta['router_type']}), embedder {meta['embedder']}",
        f"- encoder threads: {threads or 'default'}, BLAS 1 thread (as a replica); {n} real test queries; "
        "embed + score + decide, in-process",
        f"- load time {meta['load_s']:.2f} s; process RSS after load and predict: {meta['rss_mb']:.0f} MB",
        f"- load average at the end (1/5/15 min): {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
        " (the 2 cores are shared: a load above 2 inflates every figure)",
        "",
        "| batch | p50 ms / batch | p99 ms / batch | decisions / s |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for r in rows[:-2]:
        lines.append(f"| {r['batch']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['per_s']:.0f} |")
    st: dict[str, dict[str, float]] = rows[-2]["stages"]  # type: ignore[assignment]
    lines += ["", "CPU ms per batch-1 decision by stage (this thread), back to back and with the caches swept first:",
              "", "| stage | back to back | caches cold |", "| --- | ---: | ---: |"]
    for stage in ("embed", "predict", "decide"):
        lines.append(f"| {stage} | {st['warm'][stage]:.3f} | {st['cold'][stage]:.3f} |")
    lines.append(f"| **all** | **{sum(st['warm'].values()):.3f}** | **{sum(st['cold'].values()):.3f}** |")
    text = "\n".join(lines) + "\n"
    out.write_text(text, encoding="utf-8")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--router-dir", type=Path, default=Path("router_models/pretrained/default"))
    parser.add_argument("--threads", type=int, default=None, help="encoder intra-op threads (default: ONNX Runtime's)")
    parser.add_argument("--n", type=int, default=256, help="queries per measurement")
    parser.add_argument("--out", type=Path, default=Path("bench/RESULTS-scorer.md"))
    args = parser.parse_args()
    rows = run(args.router_dir, args.n, args.threads)
    print(write_markdown(rows, args.out, args.router_dir, args.threads, args.n))


if __name__ == "__main__":
    main()
