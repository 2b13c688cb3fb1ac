"""``routeiq eval``: score a saved artifact on a split with the README protocol.

The artifact is loaded through ``LearnedRouter.load`` (so evaluation exercises the same
verification and numpy scoring path as serving); only the embeddings are cached.
The best single model is chosen on the training split, as the protocol requires.
"""

from __future__ import annotations

from pathlib import Path

from router_models.data import DEFAULT_CANDIDATES, DEFAULT_TRAIN, load_routing_data
from router_models.embedding_cache import DEFAULT_CACHE_DIR, embed_cached
from router_models.evaluation.protocol import DEFAULT_LAMBDAS, EvalReport, evaluate, quality_cost_curve
from router_models.training.progress import NullProgress, ProgressSink


def evaluate_artifact(
    router_dir: str | Path,
    data_path: str | Path,
    *,
    train_path: str | Path = DEFAULT_TRAIN,
    candidates_path: str | Path = DEFAULT_CANDIDATES,
    signing_key: bytes | None = None,
    allow_pickle: bool = False,
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
    progress: ProgressSink | None = None,
) -> EvalReport:
    from router_models.inference.learned import LearnedRouter

    progress = progress or NullProgress()
    router = LearnedRouter.load(router_dir, signing_key=signing_key, allow_pickle=allow_pickle)
    train = load_routing_data(train_path, candidates_path, models=router.models)
    data = load_routing_data(data_path, candidates_path, models=router.models)
    x = embed_cached(
        data.queries,
        router.embedder_config,
        cache_dir=cache_dir,
        embedder=router.embedder,
        progress=progress.task("embedding queries", len(data)),
    )
    pred = router.predict_embeddings(x)
    lambdas = tuple(sorted({*DEFAULT_LAMBDAS, router.default_lambda}))
    report = evaluate(pred, data.scores, data.prices, data.models, train.scores.mean(0), lambdas)
    at_default = quality_cost_curve(pred, data.scores, data.prices, (router.default_lambda,))[0]
    report.extra = {
        "router_type": router.router_type,
        "router_dir": str(router_dir),
        "data": str(data_path),
        "default_lambda": router.default_lambda,
        "quality_at_default": at_default.quality,
        "cost_at_default": at_default.cost,
    }
    return report
