"""``routeiq train``: embed, cross-validate to pick the default lambda, fit, save.

Targets are each model's raw score per query (a per-model quality regression), not the
library's ``argmax`` class label: ties (22 % of queries where every model scores 0) then
carry no false preference, and cost is applied at request time by ``decide`` with the
request's lambda, so one artifact covers the whole quality-cost curve.

The default lambda is chosen by k-fold cross-validation on the *training* split only: the
lowest-cost lambda whose mean held-out quality reaches the best single model's (the
protocol's C@Q_best operating point). The evaluation split is never used for choices.

With ``feedback`` files (decision-log rows, one served model scored per row; see
``router_models.data.partial``) the training set is the full-label base set plus those
rows, weighted by inverse propensity, over the union of models: a model only the feedback
knows gets its own predictions. Cross-validation then holds out base rows only and
evaluates the base set's models only (the protocol needs every model scored); feedback
rows are always in the training folds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from router_models.data import DEFAULT_CANDIDATES, RoutingData, file_sha256, load_routing_data
from router_models.data.partial import load_feedback, merge
from router_models.embedding import EmbedderConfig
from router_models.embedding_cache import DEFAULT_CACHE_DIR, embed_cached
from router_models.evaluation.protocol import DEFAULT_LAMBDAS, evaluate
from router_models.static_embedding import STATIC, StaticEmbedder, vocabulary_size
from router_models.training.progress import NullProgress, ProgressSink
from router_models.training.scorer import TrainedScorer


def _trainers() -> dict[str, Callable[..., TrainedScorer]]:
    from router_models.training.ensemble import train_ensemble
    from router_models.training.finetune import train_finetuned
    from router_models.training.knn import train_knn
    from router_models.training.mf import train_mf
    from router_models.training.mlp import train_mlp

    return {
        "finetuned": train_finetuned,
        "ensemble": train_ensemble,
        "mlp": train_mlp,
        "knn": train_knn,
        "mf": train_mf,
    }


ROUTER_TYPES = ("finetuned", "ensemble", "mlp", "knn", "mf")
DEFAULT_ROUTER = "finetuned"
PARTIAL_LABEL_TYPES = ("finetuned", "ensemble", "mlp", "knn")
"""Router types whose losses mask unobserved scores (``mf`` does not)."""
TRAINS_EMBEDDER = frozenset({"finetuned"})
"""Router types whose training changes the embedding space (they re-embed held-out text)."""


@dataclass
class TrainConfig:
    router_type: str = DEFAULT_ROUTER
    data: Path = Path("router_models/data/routing/train.jsonl")
    candidates: Path = DEFAULT_CANDIDATES
    out: Path = Path("router_models/pretrained/default")
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    folds: int = 5
    seed: int = 0
    hparam: dict[str, Any] | None = None
    cache_dir: Path | None = DEFAULT_CACHE_DIR
    signing_key: bytes | str | None = None
    eval_data: Path | None = None
    """Optional held-out split (e.g. test.jsonl) scored after fitting, for the manifest only."""
    feedback: tuple[Path, ...] = ()
    """Decision-log training exports (partial labels) merged with ``data``."""


def fit(
    router_type: str,
    data: RoutingData,
    x: np.ndarray,
    hparam: dict[str, Any] | None = None,
    embedder: EmbedderConfig | None = None,
    progress: ProgressSink | None = None,
) -> TrainedScorer:
    """Train ``router_type`` on (x, data); ``x`` are the frozen-embedder vectors of its queries."""
    train = _trainers()[router_type]
    if embedder is not None and embedder.kind == STATIC:
        hparam = static_hparam(router_type, hparam)
    if router_type not in TRAINS_EMBEDDER:
        return train(data, x, hparam)
    advance = (progress or NullProgress()).task(f"fine-tuning on {len(data)} rows (epochs)", _epochs(hparam))
    return train(data, x, hparam, lambda *_: advance(1), embedder=embedder or EmbedderConfig())


def static_hparam(router_type: str, hparam: dict[str, Any] | None) -> dict[str, Any] | None:
    """A KNN on the static embedder projects its bank (``training.knn.STATIC_DIMS``) unless
    ``hparam`` says otherwise; an ensemble's KNN component too."""
    from router_models.training.knn import STATIC_DIMS

    if router_type == "knn":
        return {"dims": STATIC_DIMS, **(hparam or {})}
    if router_type == "ensemble":
        hp = dict(hparam or {})
        hp["knn"] = {"dims": STATIC_DIMS, **(hp.get("knn") or {})}
        return hp
    return hparam


def fit_predict(
    router_type: str,
    data: RoutingData,
    x: np.ndarray,
    eval_queries: list[str],
    x_eval: np.ndarray,
    hparam: dict[str, Any] | None = None,
    embedder: EmbedderConfig | None = None,
    progress: ProgressSink | None = None,
) -> tuple[TrainedScorer, np.ndarray]:
    """Train ``router_type`` on (x, data) and predict quality for the eval rows (serving code path).

    ``x_eval`` are the eval queries' frozen-embedder vectors; a router that trains the
    embedder instead re-embeds ``eval_queries`` with its own tuned encoder.
    """
    scorer = fit(router_type, data, x, hparam, embedder, progress)
    return scorer, predict_scorer(scorer, eval_queries, x_eval)


def _epochs(hparam: dict[str, Any] | None) -> int:
    from router_models.training.finetune import DEFAULT_HPARAM

    return int({**DEFAULT_HPARAM, **(hparam or {})}["epochs"])


def predict_scorer(scorer: TrainedScorer, queries: list[str], x: np.ndarray) -> np.ndarray:
    """Predicted quality as served: ``x`` for frozen-embedder routers, else re-embed ``queries``."""
    from router_models.embedding import Embedder, split_encoder
    from router_models.inference.scorers import PREDICTORS

    encoder, scoring = split_encoder(scorer.tensors)
    if encoder:
        x = Embedder(scorer.embedder, encoder_overrides=encoder).embed(queries)
    f32 = {k: v.astype(np.float32) for k, v in scoring.items()}
    return PREDICTORS[scorer.router_type](x, f32, scorer.params)


def cross_validate(cfg: TrainConfig, data: RoutingData, x: np.ndarray, progress: ProgressSink,
                   n_full: int | None = None, n_models: int | None = None) -> dict[str, Any]:
    """Mean held-out curve over ``cfg.folds`` folds, and the default lambda read from it.

    Only the first ``n_full`` rows (the full-label base set) are held out, and only the
    first ``n_models`` models (the base set's) evaluated; the other rows always train."""
    n_full = len(data) if n_full is None else n_full
    cols = np.arange(len(data.models) if n_models is None else n_models)
    models = [data.models[i] for i in cols]
    rng = np.random.default_rng(cfg.seed)
    parts = np.array_split(rng.permutation(n_full), cfg.folds)
    always = np.arange(n_full, len(data))
    advance = progress.task(f"cross-validating {cfg.router_type}", cfg.folds)
    quality, cost, q_best, ratios = [], [], [], []
    for f, held in enumerate(parts):
        fit = np.concatenate([p for g, p in enumerate(parts) if g != f] + [always])
        queries = [data.queries[i] for i in held]
        _, pred = fit_predict(
            cfg.router_type, data.subset(fit), x[fit], queries, x[held], cfg.hparam, cfg.embedder, progress
        )
        train_mean = data.subset(fit).mean_scores()[cols]
        rep = evaluate(pred[:, cols], data.scores[held][:, cols], data.prices[cols], models, train_mean)
        quality.append([p.quality for p in rep.curve])
        cost.append([p.cost for p in rep.curve])
        q_best.append(rep.q_best)
        ratios.append(rep.q_at_c_best / rep.q_best)
        advance(1)
    q, c, qb = np.mean(quality, 0), np.mean(cost, 0), float(np.mean(q_best))
    c_best = float(data.prices[cols][int(np.argmax(data.subset(np.arange(n_full)).mean_scores()[cols]))])
    reach = [i for i in range(len(q)) if q[i] >= qb]
    i_default = min(reach, key=lambda i: c[i]) if reach else int(np.argmax(np.where(c <= c_best, q, -1)))
    return {
        "folds": cfg.folds,
        "q_best": qb,
        "q_at_c_best_ratio": float(np.mean(ratios)),
        "c_at_q_best_pct": 100.0 * float(c[i_default]) / c_best if reach else None,
        "default_lambda": float(DEFAULT_LAMBDAS[i_default]),
        "quality_at_default": float(q[i_default]),
        "cost_at_default": float(c[i_default]),
    }


def train(cfg: TrainConfig, progress: ProgressSink | None = None) -> dict[str, Any]:
    """Run the whole pipeline; return the manifest written to ``cfg.out``."""
    from router_models.artifacts import save_artifact

    progress = progress or NullProgress()
    if cfg.router_type not in ROUTER_TYPES:
        raise ValueError(f"unknown router type {cfg.router_type!r}; choose from {ROUTER_TYPES}")
    base = load_routing_data(cfg.data, cfg.candidates)
    data = base
    for path in cfg.feedback:
        data = merge(data, load_feedback(path, cfg.candidates))
    if data.partial and cfg.router_type not in PARTIAL_LABEL_TYPES:
        raise ValueError(f"router type {cfg.router_type!r} does not train on partial labels (--feedback); "
                         f"use one of {PARTIAL_LABEL_TYPES}")
    static = _static_embedder(cfg, data, progress)
    x = _embed(cfg, static, data.queries, progress.task("embedding queries", len(data)))
    cv = (cross_validate(cfg, data, x, progress, len(base), len(base.models)) if cfg.folds > 1
          else {"default_lambda": 0.0})
    advance = progress.task(f"fitting {cfg.router_type} on all {len(data)} rows", 1)
    scorer = fit(cfg.router_type, data, x, cfg.hparam, cfg.embedder, progress)
    advance(1)
    evals: dict[str, Any] = {"cross_validation": cv}
    if cfg.eval_data is not None:
        evals["holdout"] = _holdout(cfg, base, scorer, static, cv["default_lambda"], progress)
    manifest = {
        "router_type": scorer.router_type,
        "library": scorer.library,
        "params": scorer.params,
        "models": data.models,
        "prices": dict(zip(data.models, map(float, data.prices), strict=True)),
        "price_unit": "USD per 1M tokens, (input + output) / 2",
        "embedder": (scorer.embedder or (static.config if static else cfg.embedder)).to_dict(),
        "training_data": {
            "file": Path(cfg.data).name,
            "sha256": file_sha256(cfg.data),
            "rows": len(data),
            "candidates_sha256": file_sha256(cfg.candidates),
            **({"feedback": [{"file": Path(f).name, "sha256": file_sha256(f)} for f in cfg.feedback],
                "feedback_rows": len(data) - len(base),
                "models_from_feedback": [m for m in data.models if m not in base.models]} if cfg.feedback else {}),
        },
        "default_lambda": cv["default_lambda"],
        "eval": evals,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    tensors = {**scorer.tensors, **(static.tensors() if static else {})}
    save_artifact(cfg.out, manifest, tensors, signing_key=cfg.signing_key)
    return manifest


def _embed(cfg: TrainConfig, static: StaticEmbedder | None, texts: list[str],
           progress: Callable[[int], None]) -> np.ndarray:
    """``texts`` embedded as the artifact will embed them. Static embeddings are not cached:
    they cost less than reading a cache file, and each training's weights would add files."""
    if static is not None:
        return embed_cached(texts, static.config, cache_dir=None, embedder=static, progress=progress)
    return embed_cached(texts, cfg.embedder, cache_dir=cfg.cache_dir, progress=progress)


def _static_embedder(cfg: TrainConfig, data: RoutingData, progress: ProgressSink) -> StaticEmbedder | None:
    """A new static embedder for ``cfg.embedder.kind == "static"`` (weighted by ``data``'s
    queries), else None. Only frozen-embedder routers train on one: ``finetuned`` tunes
    MiniLM's layers, which a static embedder does not run."""
    if cfg.embedder.kind != STATIC:
        return None
    if cfg.router_type in TRAINS_EMBEDDER:
        raise ValueError(f"router type {cfg.router_type!r} tunes the MiniLM encoder; a static embedder "
                         f"has none: use one of {tuple(t for t in ROUTER_TYPES if t not in TRAINS_EMBEDDER)}")
    size = vocabulary_size()
    return StaticEmbedder.distill(data.queries, cfg.embedder, progress.task("distilling token vectors", size))


def _holdout(
    cfg: TrainConfig, base: RoutingData, scorer: TrainedScorer, static: StaticEmbedder | None, lam: float,
    progress: ProgressSink,
) -> dict[str, Any]:
    """Protocol metrics of the fitted scorer on ``cfg.eval_data`` (never used for choices),
    over the base set's models (``data`` may add models only feedback scores)."""
    from router_models.evaluation.protocol import quality_cost_curve

    assert cfg.eval_data is not None
    held = load_routing_data(cfg.eval_data, cfg.candidates, models=base.models)
    xe = _embed(cfg, static, held.queries, progress.task("embedding eval queries", len(held)))
    pred = predict_scorer(scorer, held.queries, xe)[:, : len(base.models)]
    rep = evaluate(pred, held.scores, held.prices, held.models, base.scores.mean(0))
    at_default = quality_cost_curve(pred, held.scores, held.prices, (lam,))[0]
    out = {k: v for k, v in rep.to_dict().items() if k != "curve"}
    return {
        "file": Path(cfg.eval_data).name,
        "sha256": file_sha256(cfg.eval_data),
        **out,
        "quality_at_default": at_default.quality,
        "cost_at_default": at_default.cost,
    }
