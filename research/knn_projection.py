"""Does a KNN on fewer dimensions route as well? Cross-validated, from train alone (issue #21).

A static router's decision is mostly its KNN bank (5,008 x 384 float32, 7.7 MB): with cold
caches that product costs ~0.8 ms of a ~1.5 ms decision (bench/RESULTS-auto.md). A bank of
keys projected onto their top principal components is d/384 of that. This script measures
what the projection does to routing quality, with the pipeline's folds and metrics:

``python -m research.knn_projection [--router-dir .routeiq/routers/static] [--dims 384,128,96,64]``

For each fold the projection (mean and top-d components) is fitted on that fold's training
rows only; keys and held-out queries are projected, centred and L2-normalised, and a KNN
(the pipeline's default hyperparameters) predicts the held-out rows. ``384`` is the KNN as
the pipeline trains it (no projection). Each fold is scored with the data README's protocol
and averaged as ``training.pipeline.cross_validate`` does. Writes
``research/RESULTS-knn-projection.md``. Test data is never read.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.progress import track

from bench.runs import machine
from router_models.data import DEFAULT_TRAIN, RoutingData, load_routing_data
from router_models.evaluation.protocol import evaluate
from router_models.inference.learned import LearnedRouter
from router_models.training.pipeline import DEFAULT_LAMBDAS, fit_predict

HERE = Path(__file__).parent
FULL = 384


def project(fit: np.ndarray, *others: np.ndarray, dims: int) -> list[np.ndarray]:
    """``fit`` and ``others`` on ``fit``'s top ``dims`` principal components, unit length."""
    if dims >= fit.shape[1]:
        return [fit, *others]
    mean = fit.mean(0)
    _, _, vt = np.linalg.svd(fit - mean, full_matrices=False)
    out = []
    for z in (fit, *others):
        p = (z - mean) @ vt[:dims].T
        out.append((p / np.linalg.norm(p, axis=1, keepdims=True)).astype(np.float32))
    return out


def cv(data: RoutingData, x: np.ndarray, dims: int, folds: int = 5, seed: int = 0) -> dict[str, float | None]:
    """Q@C_best ratio and C@Q_best %, averaged over folds as the pipeline's CV does."""
    parts = np.array_split(np.random.default_rng(seed).permutation(len(data)), folds)
    quality, cost, q_best, ratios = [], [], [], []
    for f in range(folds):
        fit = np.concatenate([p for g, p in enumerate(parts) if g != f])
        held = parts[f]
        z_fit, z_held = project(x[fit], x[held], dims=dims)
        _, pred = fit_predict("knn", data.subset(fit), z_fit, [data.queries[i] for i in held], z_held)
        rep = evaluate(pred, data.scores[held], data.prices, data.models, data.subset(fit).mean_scores())
        quality.append([p.quality for p in rep.curve])
        cost.append([p.cost for p in rep.curve])
        q_best.append(rep.q_best)
        ratios.append(rep.q_at_c_best / rep.q_best)
    q, c, qb = np.mean(quality, 0), np.mean(cost, 0), float(np.mean(q_best))
    c_best = float(data.prices[int(np.argmax(data.mean_scores()))])
    reach = [i for i in range(len(DEFAULT_LAMBDAS)) if q[i] >= qb]
    return {"q_ratio": float(np.mean(ratios)),
            "c_pct": 100.0 * float(min(c[i] for i in reach)) / c_best if reach else None}


def main(router_dir: Annotated[Path, typer.Option(help="A static-embedder router (its embedder is used).")] = Path(
             ".routeiq/routers/static"),
         dims: Annotated[str, typer.Option(help="Comma-separated dimensions; 384 is the unprojected KNN.")] = (
             "384,128,96,64"),
         out: Annotated[Path, typer.Option()] = HERE / "RESULTS-knn-projection.md") -> None:
    data = load_routing_data(DEFAULT_TRAIN)
    embedder = LearnedRouter.load(router_dir).embedder
    assert embedder is not None
    x = embedder.embed(data.queries).astype(np.float32)
    rows = []
    for d in track([int(v) for v in dims.split(",")], description="cross-validating"):
        r = cv(data, x, d)
        pct = "not reached" if r["c_pct"] is None else f"{r['c_pct']:.1f} %"
        rows.append(f"| {d} | {len(data) * min(d, FULL) * 4 / 1e6:.1f} MB | {r['q_ratio']:.4f} | {pct} |")
    table = "\n".join(rows)
    when = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    out.write_text(f"""# KNN on projected keys: routing quality by dimension ({when})

`python -m research.knn_projection --router-dir {router_dir} --dims {dims}`; {machine()}.
KNN (the pipeline's defaults) on the static embedder of `{router_dir}`, 5-fold CV on
`train.jsonl` (the pipeline's folds and averaging); the projection is fitted per fold on its
training rows. See the module docstring.

| dimensions | bank (float32) | CV Q@C_best / Q_best | CV C@Q_best % of C_best |
| ---: | ---: | ---: | ---: |
{table}
""", encoding="utf-8")
    print(out.read_text(encoding="utf-8"))


if __name__ == "__main__":
    typer.run(main)
