"""``LearnedStrategy``: a ``LearnedRouter`` artifact plus the cost decision, per batch.

The router-scoring replica builds one per learned router at start-up (never per request)
and may ``reload`` it from Serve's ``user_config``. A batch is embedded in one
``predict`` call, in a worker thread (``asyncio.to_thread``) so the replica's event loop
keeps serving; ``decide`` then applies each query's λ. A router on the static embedder
decides on the event loop itself: its whole decision (tokenise, a table lookup, the head)
costs ~1.5 ms of CPU, and the thread hop added ~0.5 ms more per query (34 %, measured
in-process, one query at a time), the cost that matters most when the ingress decides
(``scoring: ingress``). Failures stay as narrow as they
can: a query ``decide`` refuses (non-finite λ, no scored candidate) gets its own
``undecided``; only a failed ``predict`` undecides the whole batch.

Two things keep the encoder off the path when it can be: a bounded cache of predicted
quality rows by prompt hash (``prediction_cache``; λ and candidates still apply per request),
and a deadline budget (``budget``): a query the encoder cannot score before its deadline
is decided on the router's prior and labelled ``learned:degraded`` instead of queueing.

``LearnedRouter`` (numpy, the embedder, ONNX Runtime) is imported when an artifact is loaded,
not at import: ``RoutingService`` and the registry stay importable without them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from router_models.inference.base import LoadOptions, undecided
from router_models.inference.budget import DEGRADED, PriorQuality, ScoringBudget
from router_models.inference.coverage import Coverage, coverage
from router_models.inference.decide import decide
from router_models.inference.prediction_cache import PredictionCache
from router_models.inference.types import RouteDecision, RouteQuery, RouterSpec

if TYPE_CHECKING:
    from router_models.inference.learned import LearnedRouter

log = logging.getLogger("routeiq.router")


class LearnedStrategy:
    """Routes to ``argmax(predicted quality - λ * price)`` with a verified artifact."""

    strategy: ClassVar[str] = "learned"

    def __init__(self, spec: RouterSpec, options: LoadOptions | None = None, *,
                 budget: ScoringBudget | None = None) -> None:
        if not spec.artifact:
            raise ValueError(f"router {spec.name!r}: strategy learned needs an artifact")
        self._spec, self._options = spec, options or LoadOptions()
        self._cache = PredictionCache(self._options.cache_entries)
        self._budget = budget or ScoringBudget(reserve_s=self._options.deadline_reserve_s)
        self._router = _load(spec.artifact, self._options)
        self._inline = _cheap(self._router)
        self._version = _version(spec.artifact, self._router)
        self._prior = PriorQuality(len(self._router.models))
        self._coverage = self._report_coverage(self._router)

    def reload(self, artifact: str) -> None:
        """Swap to ``artifact`` only once it loaded and verified.

        A tampered, unsigned-when-required or incompatible artifact raises ``ArtifactError``
        and the router already loaded keeps serving. Batches in flight finish on the router
        they started with (``route_batch`` reads ``self._router`` once).
        """
        if artifact == self._spec.artifact:
            return
        router = _load(artifact, self._options)
        self._router, self._spec = router, replace(self._spec, artifact=artifact)
        self._inline = _cheap(router)
        self._version, self._prior = _version(artifact, router), PriorQuality(len(router.models))
        self._cache.clear()  # the version in the key already keeps old rows out; free them too
        self._coverage = self._report_coverage(router)

    def describe(self) -> dict[str, Any]:
        router = self._router  # read once: a reload may swap it meanwhile
        lam = self._spec.lam if self._spec.lam is not None else router.default_lambda
        return {"type": router.router_type, "artifact": self._spec.artifact, "models": list(router.models),
                "default_lambda": lam, "coverage": self._coverage.as_dict() if self._coverage else None}

    def _report_coverage(self, router: LearnedRouter) -> Coverage | None:
        """Which candidates this artifact scores; logged once per load when some are not."""
        if not self._spec.candidates:
            return None  # built without the config's candidates (a bare spec): nothing to check
        found = coverage(self._spec.candidates, set(router.models))
        if line := found.summary(self._spec.name):
            log.warning(line)
        return found

    async def route_batch(self, queries: Sequence[RouteQuery]) -> list[RouteDecision]:
        router, version = self._router, self._version  # read once: a reload may swap them meanwhile
        if self._inline:
            return self._decide_all(router, version, queries)
        return await asyncio.to_thread(self._decide_all, router, version, queries)

    def _decide_all(self, router: LearnedRouter, version: str,
                    queries: Sequence[RouteQuery]) -> list[RouteDecision]:
        """Runs in a worker thread: cached rows, one encoder pass for the rest that can wait
        for it, the prior for those that cannot; then each query's decision."""
        rows: list[np.ndarray | None] = [self._cache.get(version, q.text) for q in queries]
        misses = [i for i, row in enumerate(rows) if row is None]
        late = {misses[k] for k in self._budget.late([queries[i].deadline for i in misses])}
        scored = [i for i in misses if i not in late]
        if scored:
            started = time.perf_counter()
            try:
                quality = router.predict([queries[i].text for i in scored])
            except Exception as err:  # noqa: BLE001 - the router's own failure: these queries fall back
                failed = set(scored)
                return [undecided(q, self.strategy, err, self._lam(router, q)) if i in failed
                        else self._decide(router, q, rows[i], late=i in late) for i, q in enumerate(queries)]
            self._budget.observe(len(scored), time.perf_counter() - started)
            self._prior.add(quality)
            for i, row in zip(scored, quality, strict=True):
                rows[i] = row
                self._cache.put(version, queries[i].text, row)
        return [self._decide(router, q, rows[i], late=i in late) for i, q in enumerate(queries)]

    def _decide(self, router: LearnedRouter, q: RouteQuery, row: np.ndarray | None, *, late: bool) -> RouteDecision:
        """One query's decision on its predicted row, or on the prior when it was ``late``."""
        lam = self._lam(router, q)
        try:
            predicted = dict(zip(router.models, (float(x) for x in (self._prior.row() if late else row)),
                                 strict=True))
            model, scores = decide(predicted, q.candidates, lam)
        except Exception as err:  # noqa: BLE001 - this query's failure alone
            return undecided(q, self.strategy, err, lam)
        if late:
            return RouteDecision(model=model, strategy=DEGRADED, scores=scores, lam=lam,
                                 reason="scorer saturated: mean predicted quality - lambda * price")
        return RouteDecision(model=model, strategy=f"learned:{router.manifest.get('router_type', 'model')}",
                             scores=scores, reason="max predicted quality - lambda * price", lam=lam)

    def _lam(self, router: LearnedRouter, query: RouteQuery) -> float:
        """The query's λ, else the router's configured one, else the artifact's default."""
        if query.lam is not None:
            return query.lam
        return self._spec.lam if self._spec.lam is not None else router.default_lambda


def _version(artifact: str, router: LearnedRouter) -> str:
    """What the cache keys on: the artifact and the digests of its files (a re-trained
    artifact written to the same path is another version)."""
    return f"{artifact}|{json.dumps(router.manifest.get('files', {}), sort_keys=True)}"


def _cheap(router: LearnedRouter) -> bool:
    """Whether ``router`` decides faster than a hop to a worker thread costs (static embedder).

    Such a decision runs on the event loop, so the caller's deadline cannot interrupt it; at
    ~1 ms a query (a batch of 32: ~30 ms) it has no need to."""
    from router_models.static_embedding import STATIC

    return bool(router.manifest.get("embedder", {}).get("kind") == STATIC)  # MiniLM manifests name no kind


def _load(artifact: str, options: LoadOptions) -> LearnedRouter:
    from router_models.inference.learned import LearnedRouter

    # One encoder thread: two were no faster on shared cores, and replicas share the CPU.
    router = LearnedRouter.load(artifact, signing_key=options.signing_key, allow_pickle=options.allow_pickle,
                                num_threads=1)
    router.predict(["warm-up query"])  # the first real request must not pay the session's warm-up
    return router
