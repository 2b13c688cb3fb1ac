"""The router-scoring logic: one object holding every configured router.

The router-scoring deployment wraps one ``RoutingService``. Learned routers are
loaded once, at construction (never per request); they score batches of queries
(``route_batch``) so the deployment can use ``@serve.batch``. Embedding is CPU work
and runs in a worker thread so the replica's event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router_models.inference.strategies import cost_first, weighted_shuffle
from router_models.inference.types import RouteDecision, RouteQuery


@dataclass(frozen=True)
class RouterSpec:
    """What the service needs to know about one configured router."""

    name: str
    strategy: str
    artifact: str | None = None
    lam: float | None = None


class RoutingService:
    """Routes ``RouteQuery``s with the strategy of the router they name."""

    def __init__(self, specs: Sequence[RouterSpec], *, signing_key: bytes | None = None, allow_pickle: bool = False):
        self._specs = {s.name: s for s in specs}
        self._signing_key, self._allow_pickle = signing_key, allow_pickle
        self._learned: dict[str, Any] = {}
        for spec in specs:
            if spec.strategy == "learned":
                self._learned[spec.name] = _load_learned(spec, signing_key, allow_pickle)

    def reload(self, name: str, artifact: str) -> None:
        """Swap router ``name`` to another artifact, only once it loaded and verified.

        A tampered, unsigned-when-required or incompatible artifact raises
        ``ArtifactError`` and the router already loaded keeps serving.
        """
        spec = self._specs.get(name)
        if spec is None or spec.strategy != "learned":
            raise ValueError(f"router {name!r} is not a learned router")
        if spec.artifact == artifact:
            return
        new_spec = RouterSpec(spec.name, spec.strategy, artifact, spec.lam)
        self._learned[name] = _load_learned(new_spec, self._signing_key, self._allow_pickle)
        self._specs[name] = new_spec

    def describe(self) -> dict[str, Any]:
        """What is loaded (for readiness and logs): router → type and artifact."""
        return {name: {"type": getattr(r, "router_type", "?"), "artifact": self._specs[name].artifact}
                for name, r in self._learned.items()}

    async def route_batch(self, queries: Sequence[RouteQuery]) -> list[RouteDecision]:
        """Decide a batch; learned routers embed all their queries in one call."""
        started = time.perf_counter()
        out: list[RouteDecision | None] = [None] * len(queries)
        by_router: dict[str, list[int]] = {}
        for i, q in enumerate(queries):
            spec = self._specs[q.router]
            if spec.strategy == "learned":
                by_router.setdefault(q.router, []).append(i)
            elif spec.strategy == "cost-first":
                out[i] = cost_first(q)
            else:
                out[i] = weighted_shuffle(q)
        for name, idx in by_router.items():
            decisions = await asyncio.to_thread(self._decide_learned, name, [queries[i] for i in idx])
            for i, d in zip(idx, decisions, strict=True):
                out[i] = d
        elapsed = (time.perf_counter() - started) * 1000
        return [_stamp(d, q, elapsed) for d, q in zip(out, queries, strict=True) if d is not None]

    async def route(self, query: RouteQuery) -> RouteDecision:
        return (await self.route_batch([query]))[0]

    def _decide_learned(self, name: str, queries: Sequence[RouteQuery]) -> list[RouteDecision]:
        from router_models.inference.decide import decide

        router = self._learned[name]
        quality = router.predict([q.text for q in queries])
        decisions = []
        for q, row in zip(queries, quality, strict=True):
            configured = self._specs[name].lam
            lam = q.lam if q.lam is not None else (configured if configured is not None else router.default_lambda)
            predicted = dict(zip(router.models, (float(x) for x in row), strict=True))
            model, scores = decide(predicted, q.candidates, lam)
            strategy = f"learned:{router.manifest.get('router_type', 'model')}"
            decisions.append(RouteDecision(model=model, strategy=strategy,
                                           scores=scores, reason="max predicted quality - lambda * price", lam=lam))
        return decisions


def _stamp(d: RouteDecision, q: RouteQuery, elapsed_ms: float) -> RouteDecision:
    return RouteDecision(d.model, d.strategy, d.scores, d.reason, d.lam if d.lam is not None else q.lam,
                         elapsed_ms, d.fallback)


def _load_learned(spec: RouterSpec, signing_key: bytes | None, allow_pickle: bool) -> Any:
    from router_models.inference.learned import LearnedRouter

    assert spec.artifact is not None
    # One torch thread: two were no faster on shared cores, and replicas share the CPU.
    router = LearnedRouter.load(Path(spec.artifact), signing_key=signing_key, allow_pickle=allow_pickle,
                                num_threads=1)
    router.predict(["warm-up query"])  # the first real request must not pay torch's warm-up
    return router
