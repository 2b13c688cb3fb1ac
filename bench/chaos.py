"""What a replica's death costs: the `make run` graph under load, one replica SIGKILLed.

``python -m bench.chaos [--before PATH]`` serves the demo config (``configs/demo.yaml``,
its upstream the fake one, one replica per deployment and HAProxy in front, as
``make run``) under the load of
the fault issue (6 clients on a concrete model, 2 on ``auto``, 4 streaming 60-token
streams), kills one replica of ``Provider-small``, ``RouterScoring`` or ``Ingress``, and
records every answer for the next 25 s: statuses, broken streams (no ``[DONE]``, or an
``internal_error`` event), the time until the deployment serves again, and for the scorer
the time until ``auto`` is routed by the learned router again. ``--before`` runs the same
on another checkout (e.g. a worktree of the commit before the fault work), in the same
run, so the two columns compare. Writes ``bench/RESULTS-faults.md`` and ``bench/faults.png``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import httpx
import typer
import yaml
from rich.progress import Progress

from bench.runs import commit_of, machine, start_gateway, stop_gateway
from devtools.ports import free_port, wait_port

HERE = Path(__file__).parent
ROOT = HERE.parent
KEY = "sk-bench-master-0123456789"
CONCRETE = "llama-3.1-8b-instruct"  # in the `small` provider group
KILLS = ("Provider-small", "RouterScoring", "Ingress")
AFTER_KILL_S = 25.0


@dataclass(frozen=True)
class Answer:
    at: float
    kind: str
    status: str
    strategy: str = ""
    broken: bool = False


@dataclass
class Run:
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    killed_at: float = 0.0

    def add(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)


def _config(upstream: str) -> dict[str, object]:
    raw = yaml.safe_load((ROOT / "configs/demo.yaml").read_text())
    for entry in raw["model_list"]:
        entry["litellm_params"]["api_base"] = upstream
    general = raw["general_settings"]
    general.pop("demo", None)  # older versions do not know it; a non-demo key needs none
    general["master_key"] = KEY
    return raw


def _start(tree: Path, config: Path) -> tuple[subprocess.Popen[str], int]:
    env = {"PYTHONPATH": str(tree), "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_HA_PROXY": "1",
           "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc, port = start_gateway(tree, config, env)
    _wait_ready(f"http://127.0.0.1:{port}")
    return proc, port


def _wait_ready(base: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health/readiness", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise TimeoutError("the gateway did not become ready")



def _pid(deployment: str) -> int:
    out = subprocess.run(["pgrep", "-f", f"ServeReplica:bench:{deployment}"], capture_output=True, text=True,
                         check=False)
    return int(out.stdout.split()[0])


def _client(url: str, run: Run, end: float, kind: str) -> None:
    auth = {"authorization": f"Bearer {KEY}"}
    model = "auto" if kind == "auto" else CONCRETE
    with httpx.Client(timeout=60) as c:
        while time.monotonic() < end:
            body = {"model": model, "messages": [{"role": "user", "content": f"chaos {uuid.uuid4().hex}"}]}
            if kind == "stream":
                body |= {"stream": True, "messages": [{"role": "user", "content": "s [[fake tokens=60 itl_ms=20]]"}]}
            try:
                if kind == "stream":
                    with c.stream("POST", f"{url}/chat/completions", json=body, headers=auth) as r:
                        raw = r.read().decode()
                    broken = r.status_code == 200 and (not raw.rstrip().endswith("data: [DONE]")
                                                       or '"internal_error"' in raw)
                    run.add(Answer(time.monotonic(), kind, str(r.status_code), broken=broken))
                else:
                    r = c.post(f"{url}/chat/completions", json=body, headers=auth)
                    run.add(Answer(time.monotonic(), kind, str(r.status_code), r.headers.get("x-routeiq-strategy", "")))
            except httpx.TransportError as err:
                run.add(Answer(time.monotonic(), kind, type(err).__name__))
            time.sleep(0.05)


def _scenario(tree: Path, config: Path, deployment: str) -> Run:
    proc, port = _start(tree, config)
    url = f"http://127.0.0.1:{port}/v1"
    run = Run()
    end = time.monotonic() + 5 + AFTER_KILL_S
    threads = [threading.Thread(target=_client, args=(url, run, end, kind))
               for kind in ["plain"] * 6 + ["auto"] * 2 + ["stream"] * 4]
    try:
        for t in threads:
            t.start()
        time.sleep(5)
        os.kill(_pid(deployment), signal.SIGKILL)
        run.killed_at = time.monotonic()
        for t in threads:
            t.join()
    finally:
        stop_gateway(proc)
    return run


def _recovered_after(run: Run, ok: object) -> float | None:
    """Seconds from the kill to the start of the last stretch of good answers."""
    after = [a for a in sorted(run.answers, key=lambda a: a.at) if a.at >= run.killed_at]
    bad = [a.at for a in after if not ok(a)]
    if not bad:
        return 0.0
    later = [a for a in after if a.at > bad[-1]]
    return (later[0].at - run.killed_at) if later else None


def summary(run: Run, deployment: str) -> dict[str, object]:
    after = [a for a in run.answers if a.at >= run.killed_at]
    statuses = Counter(a.status for a in after)
    if deployment == "RouterScoring":
        def ok(a: Answer) -> bool:
            return a.kind != "auto" or (a.status == "200" and a.strategy.startswith("learned"))
    else:
        def ok(a: Answer) -> bool:
            return a.status == "200" and not a.broken
    fallbacks = sum(a.kind == "auto" and a.strategy == "fallback" for a in after)
    return {"statuses": dict(statuses), "500s": statuses.get("500", 0),
            "failed": sum(n for s, n in statuses.items() if s != "200"),
            "broken_streams": sum(a.broken for a in after), "auto_fallbacks": fallbacks,
            "recovered_s": _recovered_after(run, ok), "answers": len(after)}


def _fmt(s: dict[str, object]) -> str:
    rec = s["recovered_s"]
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(s["statuses"].items()))  # type: ignore[attr-defined]
    rec_txt = "not within 25 s" if rec is None else f"{rec:.1f} s"
    return (f"{s['500s']} | {s['failed']} ({statuses}) | {s['broken_streams']} | {s['auto_fallbacks']} | "
            f"{rec_txt}")



def _plot(results: dict[tuple[str, str], Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(KILLS), figsize=(15, 4), sharey=True)
    for ax, deployment in zip(axes, KILLS, strict=True):
        for version, style in (("before", ":"), ("after", "-")):
            run = results.get((version, deployment))
            if run is None:
                continue
            bins: Counter[int] = Counter()
            total: Counter[int] = Counter()
            for a in run.answers:
                second = int(a.at - run.killed_at)
                total[second] += 1
                bad = a.status != "200" or a.broken or (deployment == "RouterScoring" and a.strategy == "fallback")
                bins[second] += int(bad)
            xs = sorted(total)
            ax.plot(xs, [bins[x] / total[x] for x in xs], style, label=version)
        ax.axvline(0, c="grey", lw=0.8)
        ax.set(title=f"{deployment} killed at t=0", xlabel="s", ylabel="share of answers failed or fallen back")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(before: Annotated[Path | None, typer.Option(help="Another checkout to measure in the same run.")] = None,
         ) -> None:
    """Kill each deployment's replica on this tree (and ``--before``); write the report."""
    up_port = free_port()
    upstream = subprocess.Popen([sys.executable, "-m", "devtools.fake_upstream", "--port", str(up_port)], cwd=ROOT)
    wait_port(up_port)
    results: dict[tuple[str, str], Run] = {}
    trees = ([("before", before.resolve())] if before else []) + [("after", ROOT)]
    try:
        with tempfile.TemporaryDirectory() as tmp, Progress() as progress:
            config = Path(tmp) / "gateway.json"
            config.write_text(json.dumps(_config(f"http://127.0.0.1:{up_port}/v1")))
            task = progress.add_task("kills", total=len(trees) * len(KILLS))
            for deployment in KILLS:  # interleaved: the machine's speed drifts
                for version, tree in trees:
                    results[(version, deployment)] = _scenario(tree, config, deployment)
                    progress.advance(task)
    finally:
        upstream.terminate()
    rows = ["| killed | version | HTTP 500s | failed answers (by status) | broken streams | `auto` fallbacks | "
            "serving again after |", "|---|---|---|---|---|---|---|"]
    for (version, deployment), run in results.items():
        rows.append(f"| {deployment} | {version} | {_fmt(summary(run, deployment))} |")
    table = "\n".join(rows)
    print(table)
    _plot(results, HERE / "faults.png")
    header = (f"# Faults: one replica SIGKILLed under load — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n\n"
              f"Machine: {machine()}. `python -m bench.chaos` (docstring). The demo config, one replica per "
              "deployment, throughput-optimized with HAProxy in front (what `make run` ships); load: 6 "
              "clients on a concrete model, 2 on `auto`, 4 "
              "streaming 60-token streams; counted over the 25 s after the kill. 'serving again': the end of the "
              "last failed (or, for the scorer, fallen-back `auto`) answer. `before`: the same run on "
              f"commit {commit_of(before) if before else '-'}.\n\n")
    (HERE / "RESULTS-faults.md").write_text(header + table + "\n\n![faults](faults.png)\n")


if __name__ == "__main__":
    typer.run(main)
