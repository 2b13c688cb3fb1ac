"""``LearnedStrategy``: a ``LearnedRouter`` artifact plus the cost decision, per batch.

The router-scoring replica builds one per learned router at start-up (never per request)
and may ``reload`` it from Serve's ``user_config``. A batch is embedded in one
``predict`` call, in a worker thread (``asyncio.to_thread``) so the replica's event loop
keeps serving; ``decide`` then applies each query's λ. Failures stay as narrow as they
can: a query ``decide`` refuses (non-finite λ, no scored candidate) gets its own
``undecided``; only a failed ``predict`` undecides the whole batch.

``LearnedRouter`` (numpy, the embedder, ONNX Runtime) is imported when an artifact is loaded,
not at import: ``RoutingService`` and the registry stay importable without them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from router_models.inference.base import LoadOptions, undecided
from router_models.inference.coverage import Coverage, coverage
from router_models.inference.decide import decide
from router_models.inference.types import RouteDecision, RouteQuery, RouterSpec

if TYPE_CHECKING:
    from router_models.inference.learned import LearnedRouter

log = logging.getLogger("routeiq.router")


class LearnedStrategy:
    """Routes to ``argmax(predicted quality - λ * price)`` with a verified artifact."""

    strategy: ClassVar[str] = "learned"

    def __init__(self, spec: RouterSpec, options: LoadOptions | None = None) -> None:
        if not spec.artifact:
            raise ValueError(f"router {spec.name!r}: strategy learned needs an artifact")
        self._spec, self._options = spec, options or LoadOptions()
        self._router = _load(spec.artifact, self._options)
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
        return await asyncio.to_thread(self._decide_all, self._router, queries)

    def _decide_all(self, router: LearnedRouter, queries: Sequence[RouteQuery]) -> list[RouteDecision]:
        """Runs in a worker thread: one embedding pass, then each query's decision."""
        try:
            quality = router.predict([q.text for q in queries])
        except Exception as err:  # noqa: BLE001 - the router's own failure: every query falls back
            return [undecided(q, self.strategy, err, self._lam(router, q)) for q in queries]
        label = f"learned:{router.manifest.get('router_type', 'model')}"
        out = []
        for q, row in zip(queries, quality, strict=True):
            lam = self._lam(router, q)
            try:
                predicted = dict(zip(router.models, (float(x) for x in row), strict=True))
                model, scores = decide(predicted, q.candidates, lam)
            except Exception as err:  # noqa: BLE001 - this query's failure alone
                out.append(undecided(q, self.strategy, err, lam))
                continue
            out.append(RouteDecision(model=model, strategy=label, scores=scores,
                                     reason="max predicted quality - lambda * price", lam=lam))
        return out

    def _lam(self, router: LearnedRouter, query: RouteQuery) -> float:
        """The query's λ, else the router's configured one, else the artifact's default."""
        if query.lam is not None:
            return query.lam
        return self._spec.lam if self._spec.lam is not None else router.default_lambda


def _load(artifact: str, options: LoadOptions) -> LearnedRouter:
    from router_models.inference.learned import LearnedRouter

    # One encoder thread: two were no faster on shared cores, and replicas share the CPU.
    router = LearnedRouter.load(artifact, signing_key=options.signing_key, allow_pickle=options.allow_pickle,
                                num_threads=1)
    router.predict(["warm-up query"])  # the first real request must not pay the session's warm-up
    return router
