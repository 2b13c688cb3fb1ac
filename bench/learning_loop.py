"""The learning loop, simulated: does a router learn the user's new models from their traffic?

``python -m bench.learning_loop`` (issue #16's simulation; ``--smoke`` for a one-minute run):

1. The shipped training split is cut in two: a *gate split* (``--gate-rows`` rows, every
   model scored: the labelled split the gate judges on, as ``routeiq label`` would write
   it) and the rest, the *base*. A cold-start KNN router is trained on the base with three
   of the nine models removed (``REMOVED``: the best model and the two best cheap ones,
   standing for the user's own models); a full-label KNN on the same rows with all nine is
   the upper bound.
2. The gateway serves the cold router from a router registry (moto's S3 server) with all
   nine models as candidates, exploring the three it does not know at ``--explore-rate``
   (``--explore-known-within``: the known models near the best too).
   It is the real app (auth, routing, exploration, decision log in SQLite, feedback) run
   **in-process** (uvicorn in a thread; the router-scoring node is the same
   ``build_scoring`` a scorer replica runs, following the registry), not a Serve graph:
   5,000 requests through Serve on this 2-core machine would cost the run's budget in
   Serve overhead and teach nothing more about learning. The upstream is the fake one.
3. The base's queries are replayed as ``auto`` traffic; each answer gets
   ``POST /v1/feedback`` with the data set's score of (query, served model).
4. Every ``--every`` requests the loop runs (``app.retrain``: export the decision log,
   train a KNN on base + feedback, gate against the served version on the gate split and
   the log's held-out queries (``--gate-holdout``), publish, promote when it passes); the
   gateway's scorer picks the promoted version up from the registry. After each round the
   served router is measured on ``--eval-data`` (default: the test split; reported only,
   never tuned on).

Writes ``bench/RESULTS-learning-loop.md`` and ``bench/learning-loop.png``.

Embeddings are memoised per text for the whole run (``memoised_embedder``): each retrain
re-embeds the base plus the log, and the gate re-embeds both splits for two routers; the
vectors are the same every time, only the 2-core machine's minutes would differ.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from tqdm import tqdm

HERE = Path(__file__).parent
REMOVED = ("llama-3.1-nemotron-51b-instruct", "gemma-2-9b-it", "llama-3.1-8b-instruct")
"""The user's "new" models: the best model and the two best cheap ones (train means 0.62, 0.54, 0.56)."""
KEY = "sk-learning-loop-master-0123456789"


@dataclass
class Point:
    """The served router after a round of the loop, measured on the evaluation split."""

    requests: int
    version: str
    q_ratio: float
    c_pct: float | None
    promoted: bool = False
    gate: str = ""
    retrain_s: float = 0.0
    candidate_q_ratio: float | None = None
    """The round's candidate on the evaluation split, promoted or not (what the gate refused)."""
    holdout_q_ratio: float | None = None
    """The served router on ``--eval-holdout``'s rows of the training split (none: not asked)."""


@dataclass
class Traffic:
    """What the replayed requests were served and cost (data set prices, the protocol's cost)."""

    served: list[str] = field(default_factory=list)
    explored: list[bool] = field(default_factory=list)
    greedy: list[str] = field(default_factory=list)
    """The model the router would have served without exploring (the served one if it did not)."""
    score: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Setup:
    base: Path
    base_full: Path
    gate: Path
    holdout: Path | None
    """``--eval-holdout`` rows: the traffic's own distribution, never replayed nor gated on."""
    candidates: Path
    queries: list[str]
    scores: list[dict[str, float]]


# --- embeddings ---------------------------------------------------------------------------

@contextmanager
def memoised_embedder() -> Iterator[dict[str, np.ndarray]]:
    """Every ``Embedder.embed`` in this process answers known texts from a per-text memo."""
    from router_models.embedding import Embedder

    memo: dict[str, np.ndarray] = {}
    original = Embedder.embed

    def embed(self: Embedder, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in memo))
        if todo:
            for t, v in zip(todo, original(self, todo, batch_size), strict=True):
                memo[t] = v
        return np.stack([memo[t] for t in texts]) if texts else original(self, texts, batch_size)

    Embedder.embed = embed  # type: ignore[method-assign]
    try:
        yield memo
    finally:
        Embedder.embed = original  # type: ignore[method-assign]


# --- data ---------------------------------------------------------------------------------

def _write(rows: list[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def prepare(train: Path, candidates: Path, work: Path, gate_rows: int, base_rows: int | None, seed: int,
            holdout_rows: int = 0) -> Setup:
    """Gate split (all models), an optional in-distribution holdout, base (new models removed)
    and its full-label twin."""
    rows = [json.loads(line) for line in train.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(rows)
    gate, holdout, base = rows[:gate_rows], rows[gate_rows:gate_rows + holdout_rows], rows[gate_rows + holdout_rows:]
    if base_rows is not None:
        base = base[:base_rows]
    cold = [{"query": r["query"], "scores": {m: s for m, s in r["scores"].items() if m not in REMOVED}} for r in base]
    return Setup(_write(cold, work / "base.jsonl"), _write(base, work / "base-full.jsonl"),
                 _write(gate, work / "gate.jsonl"), _write(holdout, work / "holdout.jsonl") if holdout else None,
                 candidates, [r["query"] for r in base],
                 [r["scores"] for r in base])


# --- the gateway, in-process --------------------------------------------------------------

def exploration(rate: float, known_within: float | None) -> dict[str, Any]:
    """The router's exploration: the new models only, or (``known_within``) every candidate the
    router cannot score plus each known one whose predicted utility is within that of the best.

    Why the second: the gate's IPS credits a candidate only where the logging policy could have
    taken its action (``router_models/evaluation/offpolicy.py``). Exploring only the new models
    leaves a candidate's changed pick among the known ones at propensity 0, so a better
    candidate can read as worse (bench/RESULTS-learning-loop.md, seeds 1-2)."""
    if known_within is None:
        return {"rate": rate, "models": list(REMOVED)}
    return {"rate": rate, "max_utility_loss": known_within}


def gateway_config(upstream: str, registry_url: str, s3: str, db: Path, cache: Path, models: list[str],
                   prices: dict[str, float], explore: dict[str, Any]) -> dict[str, Any]:
    entries = [{"model_name": m, "provider_group": "pool",
                "litellm_params": {"model": f"openai/{m}", "api_base": upstream, "api_key": "sk-up"},
                "model_info": {"input_cost_per_token": prices[m] / 1e6, "output_cost_per_token": prices[m] / 1e6}}
               for m in models]
    auto = {"name": "auto", "strategy": "learned", "artifact": registry_url, "timeout_ms": 30000,
            "fallback_model": min(models, key=lambda m: prices[m]),
            "exploration": explore}
    return {"model_list": entries,
            "router_settings": {"routers": [auto], "registry": {"endpoint_url": s3, "poll_interval_s": 0.5,
                                                                 "cache_dir": str(cache)}},
            "general_settings": {"master_key": KEY, "access": {"enabled": False, "sqlite_path": str(db)},
                                 "decisions": {"flush_interval_s": 0.2, "query_max_chars": 1_000_000}}}


def served_version(scorer: Any) -> str | None:
    """The registry version the in-process scorer (``LocalScoring``) serves now."""
    return next((st.version for st in scorer.sync.states()), None) if scorer.sync else None


@contextmanager
def serve_gateway(raw: dict[str, Any], seed: int) -> Iterator[tuple[str, Any]]:
    """The ingress app with its scorer, on a free loopback port, in a thread: the routers are
    scored in-process, as ``scoring: ingress`` does; exploration draws from a ``seed``ed RNG,
    so a run repeats (requests are sent one at a time)."""
    import uvicorn

    from app.config import parse_config
    from app.gateway.split_router import SplitRouter
    from app.main import create_app
    from app.providers.pool import LocalProviderPool
    from app.wiring import build_gateway
    from deployments.graph import _absolute_artifacts
    from deployments.router_sync import LocalScoring, build_scoring
    from devtools.ports import free_port, wait_port

    cfg = parse_config(raw)
    specs = _absolute_artifacts(cfg, Path.cwd())
    scorer = LocalScoring(*build_scoring(specs, cfg.scorer_sync_settings()))
    client = SplitRouter(scorer, frozenset(s.name for s in specs), None, "in-process")
    gateway = build_gateway(cfg, LocalProviderPool(cfg), client, exploration_rng=random.Random(seed))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(gateway),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port(port)
    try:
        yield f"http://127.0.0.1:{port}/v1", scorer
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        scorer.stop()


def request(http: httpx.Client, query: str, scores: dict[str, float], traffic: Traffic) -> None:
    """One ``auto`` request and its feedback (the data set's score of the served model)."""
    r = http.post("chat/completions", json={"model": "auto", "max_tokens": 8,
                                            "messages": [{"role": "user", "content": query}]})
    r.raise_for_status()
    model = r.headers["x-routeiq-model"]
    rated = http.post("feedback", json={"request_id": r.headers["x-request-id"], "score": scores[model]})
    rated.raise_for_status()
    explored = r.headers.get("x-routeiq-explored") == "true"
    greedy = model
    if explored:  # what the same router serves without exploring: the counterfactual's cost
        shadow = http.post("chat/completions", headers={"x-routeiq-explore": "off"},
                           json={"model": "auto", "max_tokens": 1, "messages": [{"role": "user", "content": query}]})
        shadow.raise_for_status()
        greedy = shadow.headers["x-routeiq-model"]
    traffic.served.append(model)
    traffic.explored.append(explored)
    traffic.greedy.append(greedy)
    traffic.score.append(scores[model])


# --- the loop -----------------------------------------------------------------------------

def measure(artifact: Path, split: Any, train_mean: np.ndarray) -> tuple[float, float | None]:
    """Q@C_best / Q_best and C@Q_best (% of C_best) of an artifact on the evaluation split."""
    from router_models.evaluation.gate import protocol
    from router_models.inference.learned import LearnedRouter

    report = protocol(LearnedRouter.load(artifact), split, train_mean)
    return report.q_at_c_best / report.q_best, report.c_at_q_best_pct


def wait_rated(db: Path, n: int, deadline_s: float = 120.0) -> None:
    """Until the decision log holds ``n`` rated rows (the log is written in batches)."""
    import sqlite3

    end = time.monotonic() + deadline_s
    while True:
        with sqlite3.connect(db) as con:
            rated = con.execute("SELECT count(*) FROM routeiq_decisions WHERE feedback IS NOT NULL").fetchone()[0]
        if rated >= n:
            return
        if time.monotonic() > end:
            raise TimeoutError(f"decision log has {rated} rated rows of {n}")
        time.sleep(0.2)


def one_round(args: argparse.Namespace, setup: Setup, work: Path, db: Path, registry: Any) -> Any:
    """Export → train → gate → publish → promote, as ``routeiq retrain`` runs it."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.access.decision_store import DecisionStore
    from app.retrain import RetrainPlan, export_decisions, retrain

    async def export() -> Any:
        engine = create_async_engine(f"sqlite+aiosqlite:///{db}")
        try:
            return await export_decisions(DecisionStore(engine, timeout_s=60), work / "decisions")
        finally:
            await engine.dispose()

    plan = RetrainPlan(router="auto", work=work, base_data=setup.base, eval_data=setup.gate,
                       candidates=setup.candidates, router_type="knn", folds=1, hparam=args.hparam,
                       gate_holdout=args.gate_holdout,
                       margins={"ope_evidence": args.ope_evidence, "split_evidence": args.split_evidence})
    return retrain(plan, asyncio.run(export()), registry)


def wait_version(scorer: Any, version: str, deadline_s: float = 120.0) -> None:
    end = time.monotonic() + deadline_s
    while served_version(scorer) != version:
        if time.monotonic() > end:
            raise TimeoutError(f"the scorer still serves {served_version(scorer)}, not {version}")
        time.sleep(0.2)


def simulate(args: argparse.Namespace, setup: Setup, work: Path) -> dict[str, Any]:
    from devtools.registry import new_registry
    from devtools.s3_server import S3Server
    from devtools.servers import ThreadedFakeUpstream
    from router_models.data import load_prices, load_routing_data
    from router_models.training.pipeline import TrainConfig, train

    prices = load_prices(setup.candidates)
    models = list(setup.scores[0])
    split = load_routing_data(args.eval_data, setup.candidates, models=models)
    if args.eval_rows:
        split = split.subset(np.arange(min(args.eval_rows, len(split))))
    holdout = None if setup.holdout is None else load_routing_data(setup.holdout, setup.candidates, models=models)
    train_mean = load_routing_data(setup.base_full, setup.candidates, models=models).scores.mean(0)
    for name, data in (("cold", setup.base), ("full", setup.base_full)):
        train(TrainConfig(router_type="knn", data=data, candidates=setup.candidates, out=work / name, folds=1,
                          cache_dir=work / "cache", hparam=args.hparam))
    cold, full = measure(work / "cold", split, train_mean), measure(work / "full", split, train_mean)
    splits = Splits(split, holdout, train_mean)
    in_dist = None if holdout is None else tuple(measure(work / n, holdout, train_mean)[0] for n in ("cold", "full"))
    s3, upstream = S3Server().start(), ThreadedFakeUpstream().start()
    try:
        registry = new_registry(s3)
        registry.promote("auto", registry.publish(work / "cold").version)
        db = work / "decisions.db"
        raw = gateway_config(upstream.url, f"s3://{registry.location.bucket}/{registry.location.prefix}", s3.url,
                             db, work / "scorer-cache", models, prices,
                             exploration(args.explore_rate, args.explore_known_within))
        traffic, points = Traffic(), [Point(0, "v1", *cold, holdout_q_ratio=None if in_dist is None else in_dist[0])]
        order = random.Random(args.seed).sample(range(len(setup.queries)), len(setup.queries))
        with serve_gateway(raw, args.seed) as (url, scorer), httpx.Client(base_url=url + "/", timeout=120,
                                                               headers={"authorization": f"Bearer {KEY}"}) as http:
            bar = tqdm(total=args.requests, desc="requests served", unit="req")
            for i in range(args.requests):
                q = order[i % len(order)]
                request(http, setup.queries[q], setup.scores[q], traffic)
                bar.update(1)
                if (i + 1) % args.every == 0 or i + 1 == args.requests:
                    points.append(loop_round(args, setup, work / f"round-{i + 1}", db, registry, scorer,
                                             i + 1, splits, bar))
            bar.close()
    finally:
        upstream.stop()
        s3.stop()
    return {"cold": cold, "full": full, "points": points, "traffic": traffic, "prices": prices, "in_dist": in_dist}


@dataclass(frozen=True)
class Splits:
    """What each round is measured on: the evaluation split and, if asked, the holdout."""

    eval: Any
    holdout: Any
    train_mean: np.ndarray


def loop_round(args: argparse.Namespace, setup: Setup, work: Path, db: Path, registry: Any, scorer: Any,
               served: int, splits: Splits, bar: Any) -> Point:
    bar.set_postfix_str("retraining")
    wait_rated(db, served)
    started = time.perf_counter()
    result = one_round(args, setup, work, db, registry)
    seconds = time.perf_counter() - started
    if result.promoted:
        wait_version(scorer, result.version)
    info = registry.current("auto")
    current = info.version
    registry.fetch(info, work / "served")
    q_ratio, c_pct = measure(work / "served", splits.eval, splits.train_mean)
    candidate_q = measure(work / "candidate", splits.eval, splits.train_mean)[0]
    holdout_q = None if splits.holdout is None else measure(work / "served", splits.holdout, splits.train_mean)[0]
    bar.set_postfix_str(f"{current} Q@C_best {q_ratio:.3f}")
    return Point(served, current, q_ratio, c_pct, result.promoted, result.summary(), seconds, candidate_q, holdout_q)


# --- the report ---------------------------------------------------------------------------

def summarise(run: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The numbers the issue's target is stated in."""
    cold, full, points, traffic = run["cold"][0], run["full"][0], run["points"], run["traffic"]
    prices = run["prices"]
    last = points[-1]
    served_cost = sum(prices[m] for m in traffic.served)
    greedy_cost = sum(prices[m] for m in traffic.greedy)
    gap = full - cold
    return {
        "requests": len(traffic.served), "every": args.every, "explore_rate": args.explore_rate,
        "cold_q_ratio": cold, "full_q_ratio": full, "final_q_ratio": last.q_ratio,
        "gap_recovered": (last.q_ratio - cold) / gap if gap > 0 else float("nan"),
        "best_gap_recovered": (max(p.q_ratio for p in points) - cold) / gap if gap > 0 else float("nan"),
        "cold_c_pct": run["cold"][1], "full_c_pct": run["full"][1], "final_c_pct": last.c_pct,
        "explored_share": float(np.mean(traffic.explored)) if traffic.explored else 0.0,
        "exploration_extra_cost": served_cost / greedy_cost - 1 if greedy_cost else float("nan"),
        "served_new_share": float(np.mean([m in REMOVED for m in traffic.served])) if traffic.served else 0.0,
        "mean_served_score": float(np.mean(traffic.score)) if traffic.score else float("nan"),
        "promotions": sum(p.promoted for p in points),
        **holdout_summary(run["in_dist"], points),
    }


def holdout_summary(in_dist: tuple[float, float] | None, points: list[Point]) -> dict[str, Any]:
    """The gap recovered on the ``--eval-holdout`` rows (the traffic's distribution), if asked."""
    if in_dist is None:
        return {}
    cold, full = in_dist
    gap, last = full - cold, points[-1].holdout_q_ratio
    return {"holdout_cold_q_ratio": cold, "holdout_full_q_ratio": full, "holdout_final_q_ratio": last,
            "holdout_gap_recovered": (last - cold) / gap if gap > 0 and last is not None else float("nan")}


def plot(run: dict[str, Any], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points, traffic, prices = run["points"], run["traffic"], run["prices"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5))
    xs = [p.requests for p in points]
    ax.plot(xs, [p.q_ratio for p in points], "o-", label="served router (after each round)")
    cands = [(p.requests, p.candidate_q_ratio) for p in points if p.candidate_q_ratio is not None]
    ax.plot([c[0] for c in cands], [c[1] for c in cands], "x:", label="each round's candidate (gated)")
    ax.axhline(run["cold"][0], color="grey", ls="--", label="cold start (6 of 9 models)")
    ax.axhline(run["full"][0], color="green", ls="--", label="full labels (upper bound)")
    if run["in_dist"] is not None:  # --eval-holdout: the same routers on the traffic's distribution
        ax.plot(xs, [p.holdout_q_ratio for p in points], "s-", color="purple", alpha=0.6,
                label="served router, held-out training rows")
        ax.axhline(run["in_dist"][0], color="purple", ls=":", alpha=0.6, label="cold / full, held-out rows")
        ax.axhline(run["in_dist"][1], color="purple", ls=":", alpha=0.6)
    ax.set(xlabel="requests served", ylabel="Q@C_best / Q_best (eval split)", title="quality")
    ax.legend(fontsize=8)
    window = max(1, len(traffic.served) // 50)
    served = np.convolve([prices[m] for m in traffic.served], np.ones(window) / window, mode="valid")
    greedy = np.convolve([prices[m] for m in traffic.greedy], np.ones(window) / window, mode="valid")
    bx.plot(np.arange(len(served)) + window, served, label="served (with exploration)")
    bx.plot(np.arange(len(greedy)) + window, greedy, label="same router, not exploring")
    bx.set(xlabel="requests served", ylabel=f"price per request, $/1M tokens (mean of {window})",
           title="cost of exploration")
    bx.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def write_results(run: dict[str, Any], summary: dict[str, Any], args: argparse.Namespace, out: Path,
                  png: Path, seconds: float) -> None:
    from bench.runs import commit_of, machine

    def pct(v: float | None) -> str:
        return "never reaches Q_best" if v is None else f"{v:.1f} %"

    rows = "\n".join(f"| {p.requests} | {p.version} | {p.q_ratio:.4f} | {pct(p.c_pct)} | "
                     f"{'-' if p.candidate_q_ratio is None else f'{p.candidate_q_ratio:.4f}'} | "
                     f"{'yes' if p.promoted else 'no'} | {p.retrain_s:.0f} s |" for p in run["points"])
    s = summary
    out.write_text(f"""# Learning loop simulation (issue #16)

Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit {commit_of(HERE.parent)}, {machine()};
`python -m bench.learning_loop --requests {args.requests} --every {args.every} --seed {args.seed}
--explore-rate {args.explore_rate}{known_arg(args)}
--prior-strength {args.prior_strength:g} --gate-holdout {args.gate_holdout:g} --ope-evidence {args.ope_evidence}
--split-evidence {args.split_evidence} --gate-rows {args.gate_rows}{holdout_arg(args)}`
({seconds / 60:.0f} min).
What it does: `bench/learning_loop.py`'s docstring.
The gateway ran **in-process** (the real app: auth, `auto` routing, exploration, decision log in
SQLite, `POST /v1/feedback`; the scorer is `build_scoring`, following a registry on moto's S3
server), not as a Serve graph. Router: KNN (k={args.hparam['n_neighbors']}; on partial labels a sparse
model's neighbours are shrunk toward its stacked prior with strength {args.prior_strength:g},
`router_models/training/knn.py`). New models (removed
from the cold start, explored at rate {args.explore_rate}): {', '.join(REMOVED)}. Evaluation split:
`{args.eval_data}` (reporting only); the gate judged on a {args.gate_rows}-row full-label slice of
the training split that was never replayed.

![quality and cost]({png.name})

| | Q@C_best / Q_best | C@Q_best |
|---|---|---|
| cold start (6 of 9 models) | {s['cold_q_ratio']:.4f} | {pct(s['cold_c_pct'])} |
| after {s['requests']} requests | {s['final_q_ratio']:.4f} | {pct(s['final_c_pct'])} |
| full labels (upper bound) | {s['full_q_ratio']:.4f} | {pct(s['full_c_pct'])} |

- **Gap recovered** (Q@C_best, cold → full): **{s['gap_recovered']:.0%}** at the end,
  {s['best_gap_recovered']:.0%} at the best round (target >= 80 % within 5,000 requests).
- **Cost of exploration**: the served answers cost **{s['exploration_extra_cost']:+.1%}** vs what the
  same routers serve the same queries without exploring (target <= +5 %); {s['explored_share']:.1%} of
  the requests explored; {s['served_new_share']:.1%} were served by a new model; mean served score
  {s['mean_served_score']:.3f}; {s['promotions']} promotions.

{holdout_lines(s, args)}
| requests | version served | Q@C_best / Q_best | C@Q_best | candidate's Q@C_best / Q_best | promoted | round took |
|---|---|---|---|---|---|---|
{rows}
""", encoding="utf-8")


def holdout_arg(args: argparse.Namespace) -> str:
    return f" --eval-holdout {args.eval_holdout}" if args.eval_holdout else ""


def holdout_lines(s: dict[str, Any], args: argparse.Namespace) -> str:
    """The same served routers on the traffic's own distribution (``--eval-holdout``)."""
    if "holdout_gap_recovered" not in s:
        return ""
    return (f"- **On {args.eval_holdout} held-out rows of the training split** (the traffic's distribution; "
            f"never replayed, never gated on): cold {s['holdout_cold_q_ratio']:.4f}, end "
            f"{s['holdout_final_q_ratio']:.4f}, full labels {s['holdout_full_q_ratio']:.4f}: "
            f"**{s['holdout_gap_recovered']:.0%}** of the gap recovered.\n")


def known_arg(args: argparse.Namespace) -> str:
    within = args.explore_known_within
    return "" if within is None else f" --explore-known-within {within:g}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from router_models.data import DEFAULT_CANDIDATES, DEFAULT_TEST, DEFAULT_TRAIN

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=5000, help="Requests replayed.")
    p.add_argument("--every", type=int, default=500, help="Run the loop after every K requests.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--explore-rate", type=float, default=0.2,
                   help="0.2: research/partial_labels.py's choice (docs/routing.md); costs less than not exploring.")
    p.add_argument("--explore-known-within", type=float, default=None,
                   help="Also explore known models within this predicted utility of the best "
                   "(default: the new models only).")
    p.add_argument("--eval-data", type=Path, default=DEFAULT_TEST, help="Reporting split (never tuned on).")
    p.add_argument("--eval-rows", type=int, default=0, help="Use only its first N rows (0: all).")
    p.add_argument("--gate-rows", type=int, default=1500,
                   help="Full-label rows held out for the gate (500: mean gap recovered 42 %, 1,500: 87 %; RESULTS).")
    p.add_argument("--eval-holdout", type=int, default=0,
                   help="Also measure on this many more held-out training rows (the traffic's distribution).")
    p.add_argument("--neighbors", type=int, default=80)
    p.add_argument("--gate-holdout", type=float, default=0.2,
                   help="Share of logged queries the gate reads and training never sees (app.retrain).")
    p.add_argument("--ope-evidence", choices=("interval", "point"), default="interval",
                   help="What refuses a candidate on the log (router_models.evaluation.gate).")
    p.add_argument("--split-evidence", choices=("point", "better"), default="point",
                   help="What passes on the gate's labelled split (router_models.evaluation.gate).")
    p.add_argument("--prior-strength", type=float, default=None,
                   help="Pseudo-weight of a sparse model's stacked prior (default: training.knn's).")
    p.add_argument("--smoke", action="store_true", help="A tiny run: 40 requests, a 300-row base.")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS-learning-loop.md")
    p.add_argument("--work", type=Path, default=None, help="Keep the run's files here.")
    args = p.parse_args(argv)
    base_rows = None
    if args.smoke:
        args.requests, args.every, args.gate_rows, args.eval_rows, args.neighbors = 40, 20, 60, 60, 10
        base_rows = 300
    from router_models.training.knn import PRIOR_STRENGTH

    args.prior_strength = PRIOR_STRENGTH if args.prior_strength is None else args.prior_strength
    args.hparam = {"n_neighbors": args.neighbors, "prior_strength": args.prior_strength}
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="learning-loop-") as tmp, memoised_embedder():
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        setup = prepare(DEFAULT_TRAIN, DEFAULT_CANDIDATES, work, args.gate_rows, base_rows, args.seed,
                        args.eval_holdout)
        run = simulate(args, setup, work)
    summary = summarise(run, args)
    print(json.dumps({**summary, "points": [asdict(pt) for pt in run["points"]]}, indent=1))
    if not args.smoke:
        png = args.out.with_name("learning-loop.png")
        plot(run, png, f"learning loop, {summary['requests']} requests, {dt.datetime.now(dt.UTC):%Y-%m-%d}")
        write_results(run, summary, args, args.out, png, time.perf_counter() - started)
    return summary


if __name__ == "__main__":
    main()
