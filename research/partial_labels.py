"""Offline simulation of the learning loop's partial labels: which learner learns new models?

``python -m research.partial_labels`` (no gateway, about a minute on 2 cores once the
training split's embeddings are cached). It mirrors ``bench/learning_loop.py`` without
serving anything, so learners can be compared in seconds instead of a 35-minute run:

1. ``train.jsonl`` is shuffled (``--seeds``: one simulation per seed) and cut like the
   bench cuts it: a 500-row *gate split* (every model scored) and the *base*, whose
   three ``REMOVED`` models are hidden from the cold start.
2. Traffic: ``--requests`` base queries served by the cold KNN at lambda 0 (the bench's
   artifacts are trained with ``folds=1``, so their default lambda is 0), explored
   epsilon-greedily over the removed models at ``--rates``; each answer yields one
   partial-label row ``{served model: score}`` with its logged propensity, as the decision
   log exports it. The policy never changes (no promotion), the pessimistic case for the
   number of labels a new model gets.
3. Each learner is trained on base + the first n rows of that traffic and judged on the
   gate split by the protocol's Q@C_best / Q_best, against the cold KNN and the
   full-label KNN on the same base. ``test.jsonl`` is never read.

The learners are ``router_models.training.knn``'s tensors served by
``inference.scorers.predict_knn`` with different settings (``--learners``): ``old`` is the
first bench run's KNN (no ``sparse`` tensor: neighbours' mean, else the global prior),
``shrinkN`` shrinks toward the global prior, ``stack+shrinkN`` toward the stacked prior with
strength N, ``stack`` is the stacked prior alone. Results are in docs/routing.md ("Sparse
models in the KNN"); "gap recovered" per split explodes where a split's gap is near zero,
so compare the mean ratios.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass

import numpy as np

from router_models.data import DEFAULT_CANDIDATES, DEFAULT_TRAIN, RoutingData, load_routing_data
from router_models.data.partial import MIN_PROPENSITY
from router_models.embedding import EmbedderConfig
from router_models.embedding_cache import embed_cached
from router_models.evaluation.protocol import evaluate
from router_models.inference.scorers import predict_knn
from router_models.training.knn import knn_tensors

REMOVED = ("llama-3.1-nemotron-51b-instruct", "gemma-2-9b-it", "llama-3.1-8b-instruct")


@dataclass(frozen=True)
class Learner:
    name: str
    params: dict[str, object]


def traffic(cold_pred: np.ndarray, scores: np.ndarray, new: list[int], rate: float, n: int,
            seed: int) -> tuple[list[int], list[int], list[float]]:
    """Rows served (indices into base), models served and their propensities."""
    rng = random.Random(seed)
    order = rng.sample(range(len(scores)), len(scores))
    rows, served, props = [], [], []
    for i in range(n):
        q = order[i % len(order)]
        greedy = int(np.argmax(cold_pred[q]))
        if rng.random() < rate:
            m = new[rng.randrange(len(new))]
            p = rate / len(new)
        else:
            m, p = greedy, 1.0 - rate
        rows.append(q)
        served.append(m)
        props.append(p)
    return rows, served, props


def partial_data(base: RoutingData, full: RoutingData, rows: list[int], served: list[int],
                 props: list[float]) -> RoutingData:
    """Base (new models NaN) plus one row per request scoring only the served model."""
    n_models = len(full.models)
    fb = np.full((len(rows), n_models), np.nan, dtype=np.float32)
    fb[np.arange(len(rows)), served] = full.scores[rows, served]
    scores = np.vstack([base.scores, fb])
    weights = np.concatenate([np.ones(len(base)), 1.0 / np.maximum(np.array(props), MIN_PROPENSITY)])
    return RoutingData([*base.queries, *[base.queries[r] for r in rows]], scores, full.models, full.prices, weights)


def ratio(pred: np.ndarray, split: RoutingData, train_mean: np.ndarray) -> float:
    rep = evaluate(pred, split.scores, split.prices, split.models, train_mean)
    return rep.q_at_c_best / rep.q_best


def one_seed(x_all: np.ndarray, data: RoutingData, seed: int, args: argparse.Namespace,
             learners: list[Learner]) -> dict[tuple[str, float, int], float]:
    perm = list(range(len(data)))
    random.Random(seed).shuffle(perm)
    gate_idx, base_idx = np.array(perm[:500]), np.array(perm[500:])
    full, split = data.subset(base_idx), data.subset(gate_idx)
    xb, xg = x_all[base_idx], x_all[gate_idx]
    new = [full.models.index(m) for m in REMOVED]
    cold_scores = full.scores.copy()
    cold_scores[:, new] = np.nan
    cold = RoutingData(full.queries, cold_scores, full.models, full.prices)
    knn = {"n_neighbors": 80, "weights": "uniform"}
    train_mean = full.scores.mean(0)
    cold_pred = predict_knn(xb, knn_tensors(xb, full.subset(np.arange(len(full)))), knn)
    cold_pred[:, new] = -np.inf
    gate_cold = predict_knn(xg, knn_tensors(xb, full), knn)
    gate_cold[:, new] = -np.inf
    out = {("cold", 0.0, 0): ratio(gate_cold, split, train_mean),
           ("full", 0.0, 0): ratio(predict_knn(xg, knn_tensors(xb, full), knn), split, train_mean)}
    for rate in args.rates:
        rows, served, props = traffic(cold_pred, full.scores, new, rate, max(args.at), seed)
        for n in args.at:
            part = partial_data(cold, full, rows[:n], served[:n], props[:n])
            xp = np.vstack([xb, xb[rows[:n]]])
            for lr in learners:
                tensors = knn_tensors(xp, part, stack=bool(lr.params["stack"]))
                if not lr.params.get("sparse", True):
                    tensors.pop("sparse")
                pred = predict_knn(xg, tensors, {**knn, "prior_strength": lr.params["prior_strength"]})
                out[(lr.name, rate, n)] = ratio(pred, split, train_mean)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--rates", type=float, nargs="+", default=[0.1])
    p.add_argument("--at", type=int, nargs="+", default=[1000, 2500, 5000])
    p.add_argument("--learners", nargs="*", default=[], help="Names to run (default: all).")
    args = p.parse_args()
    data = load_routing_data(DEFAULT_TRAIN, DEFAULT_CANDIDATES)
    x = embed_cached(data.queries, EmbedderConfig())
    all_learners = [
        Learner("old", {"prior_strength": 0.0, "stack": False, "sparse": False}),
        Learner("shrink20", {"prior_strength": 20.0, "stack": False}),
        Learner("stack+shrink60", {"prior_strength": 60.0, "stack": True}),
        Learner("stack+shrink100", {"prior_strength": 100.0, "stack": True}),
        Learner("stack+shrink200", {"prior_strength": 200.0, "stack": True}),
        Learner("stack+shrink500", {"prior_strength": 500.0, "stack": True}),
        Learner("stack", {"prior_strength": 1e9, "stack": True}),
    ]
    learners = [lr for lr in all_learners if not args.learners or lr.name in args.learners]
    results = [one_seed(x, data, s, args, learners) for s in args.seeds]
    keys = list(results[0])
    cold = np.mean([r[("cold", 0.0, 0)] for r in results])
    full = np.mean([r[("full", 0.0, 0)] for r in results])
    print(f"cold {cold:.4f}  full {full:.4f}  (mean over seeds {args.seeds}, gate splits of train.jsonl)")
    for k in keys:
        vals = [r[k] for r in results]
        gap = [(r[k] - r[("cold", 0.0, 0)]) / (r[("full", 0.0, 0)] - r[("cold", 0.0, 0)]) for r in results]
        print(f"{k[0]:>16} rate {k[1]:.2f} n {k[2]:>5}: Q@C_best ratio {np.mean(vals):.4f}  "
              f"gap recovered {np.mean(gap):6.1%}  per seed {' '.join(f'{g:6.1%}' for g in gap)}")


if __name__ == "__main__":
    main()
