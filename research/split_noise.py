"""How much a 500-query test split can move Q@C_best and C@Q_best, from train alone.

``python -m research.split_noise`` computes out-of-fold predictions of a router type on
train.jsonl (the pipeline's 5 folds), then draws many random subsets of ``--n`` queries
and applies the README protocol to each: the spread of the two metrics is what one
draw of a test split of that size can do to the same router. Writes
``research/RESULTS-split-noise.md`` and a histogram PNG. Test data is never read.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import typer
from rich.progress import track

from bench.runs import machine
from router_models.data import DEFAULT_TRAIN, file_sha256, load_routing_data
from router_models.embedding import EmbedderConfig
from router_models.embedding_cache import DEFAULT_CACHE_DIR, embed_cached
from router_models.evaluation.protocol import evaluate
from router_models.training.pipeline import fit_predict

HERE = Path(__file__).parent
TARGET_RATIO, TARGET_PCT = 1.04, 40.0
NOT_REACHED = 200.0
"""C@Q_best % recorded for a subset whose curve never reaches Q_best (above any real value)."""


def out_of_fold(router: str, folds: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(predictions, scores, prices, models) with every row predicted by a model that never saw it."""
    data = load_routing_data(DEFAULT_TRAIN)
    x = embed_cached(data.queries, EmbedderConfig(), cache_dir=DEFAULT_CACHE_DIR)
    parts = np.array_split(np.random.default_rng(seed).permutation(len(data)), folds)
    pred = np.zeros_like(data.scores, dtype=np.float32)
    for f in track(range(folds), description=f"out-of-fold {router}"):
        fit = np.concatenate([p for g, p in enumerate(parts) if g != f])
        held = parts[f]
        queries = [data.queries[i] for i in held]
        _, pred[held] = fit_predict(router, data.subset(fit), x[fit], queries, x[held], embedder=EmbedderConfig())
    return pred, data.scores, data.prices, data.models


def out_of_fold_cached(
    router: str, cache_dir: Path = DEFAULT_CACHE_DIR
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``out_of_fold`` kept in ``cache_dir`` (keyed by router type and the train file's hash)."""
    path = Path(cache_dir) / f"oof-{router}-{file_sha256(DEFAULT_TRAIN)[:16]}.npz"
    if path.exists():
        print(f"out-of-fold {router}: cached in {path} (delete it after changing the router's training)")
        z = np.load(path)
        return z["pred"], z["scores"], z["prices"], [str(m) for m in z["models"]]
    pred, scores, prices, models = out_of_fold(router)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, pred=pred, scores=scores, prices=prices, models=np.array(models))
    return pred, scores, prices, models


def draw(pred: np.ndarray, scores: np.ndarray, prices: np.ndarray, models: list[str], n: int, draws: int,
         seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Q@C_best ratio and C@Q_best % (``NOT_REACHED`` when not reached) on ``draws`` random ``n``-row subsets."""
    rng = np.random.default_rng(seed)
    train_mean = scores.mean(0)  # the best single model stays the one chosen on all of train
    ratios, pcts = np.empty(draws), np.empty(draws)
    for i in track(range(draws), description=f"{draws} subsets of {n}"):
        rows = rng.choice(len(scores), n, replace=False)
        rep = evaluate(pred[rows], scores[rows], prices, models, train_mean)
        ratios[i] = rep.q_at_c_best / rep.q_best
        pcts[i] = NOT_REACHED if rep.c_at_q_best_pct is None else rep.c_at_q_best_pct
    return ratios, pcts


def main(router: str = "ensemble", n: int = 500, draws: int = 1000, seed: int = 1) -> None:
    pred, scores, prices, models = out_of_fold_cached(router)
    whole = evaluate(pred, scores, prices, models, scores.mean(0))
    ratios, pcts = draw(pred, scores, prices, models, n, draws, seed)
    rows = [
        ("all 5,008 out-of-fold rows", f"{whole.q_at_c_best / whole.q_best:.3f}", f"{whole.c_at_q_best_pct:.1f}"),
        ("subsets: median", f"{np.median(ratios):.3f}", f"{np.median(pcts):.1f}"),
        ("subsets: 5th-95th percentile", f"{np.percentile(ratios, 5):.3f}-{np.percentile(ratios, 95):.3f}",
         f"{np.percentile(pcts, 5):.1f}-{np.percentile(pcts, 95):.1f}"),
        ("subsets missing the target", f"{100 * np.mean(ratios < TARGET_RATIO):.0f} % below {TARGET_RATIO}",
         f"{100 * np.mean(pcts > TARGET_PCT):.0f} % above {TARGET_PCT:.0f}"),
    ]
    png = HERE / f"split-noise-{router}.png"
    _plot(ratios, pcts, png, router, n)
    lines = [
        f"# Split noise: {router}, subsets of {n} train queries ({dt.date.today()}, {machine()})",
        "",
        f"`python -m research.split_noise --router {router} --n {n} --draws {draws}`: out-of-fold predictions on",
        f"train.jsonl (5 folds), then {draws} random subsets of {n} rows, each scored with the README protocol.",
        "",
        "| | Q@C_best x Q_best | C@Q_best % of C_best |",
        "|---|---:|---:|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        f"![histograms]({png.name})",
        "",
    ]
    (HERE / "RESULTS-split-noise.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


def _plot(ratios: np.ndarray, pcts: np.ndarray, path: Path, router: str, n: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.hist(ratios, bins=40, color="tab:blue")
    a.axvline(TARGET_RATIO, color="tab:red", ls="--", label=f"target {TARGET_RATIO}")
    a.set_xlabel("Q@C_best / Q_best")
    b.hist(np.clip(pcts, 0, 120), bins=40, color="tab:green")
    b.axvline(TARGET_PCT, color="tab:red", ls="--", label=f"target {TARGET_PCT:.0f} %")
    b.set_xlabel("C@Q_best, % of C_best (120 = not reached)")
    for ax in (a, b):
        ax.set_ylabel("subsets")
        ax.legend()
    fig.suptitle(f"{router}: the same out-of-fold predictions on random {n}-query subsets of train")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    typer.run(main)
