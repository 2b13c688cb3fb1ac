"""The cost decision: pick the candidate maximising ``quality - lam * price``.

Scoring (``LearnedRouter.predict``) is separate from deciding, as in RouteLLM: the
learned part predicts each model's quality once, and the willingness to pay ``lam`` is
applied here per request, so one artifact serves every price/quality trade-off without
retraining. ``price`` is the candidate's gateway price in $ per 1M tokens (mean of input
and output, the data README's protocol), so ``lam`` is "quality points per $/1M tokens":
``lam = 0`` buys the best predicted model whatever it costs; ``lam = 0.1`` pays at most
0.1 quality (10 points of accuracy) per extra $1/1M tokens.

Pure and side-effect free: safe from any thread or event loop.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from router_models.inference.types import Candidate


class NoScoredCandidateError(ValueError):
    """None of the candidates is a model the router artifact predicts quality for."""

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (str(self),))


@dataclass(frozen=True)
class Decision:
    model: str
    """Name of the chosen candidate."""
    utilities: dict[str, float]
    """``quality - lam * price`` for every scored candidate, in candidate order."""
    skipped: tuple[str, ...]
    """Candidates the artifact has no quality for (unknown model or NaN), not considered."""
    lam: float

    def __iter__(self) -> Iterator[object]:
        """Unpacks as ``model, utilities = decide(...)`` (the serving code's shape)."""
        return iter((self.model, self.utilities))


def decide(quality: Mapping[str, float], candidates: Sequence[Candidate], lam: float) -> Decision:
    """Choose among ``candidates`` given predicted ``quality`` per model name.

    A candidate unknown to ``quality`` is scored as its ``profile`` (a model the artifact
    knows, named by the operator) when it has one, else skipped (listed in
    ``Decision.skipped``), never guessed. Ties (within 1e-9) go to the lower price, then to the earlier candidate.
    """
    if not math.isfinite(lam) or lam < 0:
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
    utilities: dict[str, float] = {}
    skipped: list[str] = []
    best: Candidate | None = None
    best_util = -math.inf
    for cand in candidates:
        q = quality.get(cand.name)
        if q is None and cand.profile is not None:
            q = quality.get(cand.profile)
        if q is None or not math.isfinite(q) or cand.name in utilities:
            skipped.append(cand.name)
            continue
        util = float(q) - lam * cand.price
        utilities[cand.name] = util
        if best is None or util > best_util + 1e-9 or (abs(util - best_util) <= 1e-9 and cand.price < best.price):
            best, best_util = cand, util
    if best is None:
        names = [c.name for c in candidates]
        raise NoScoredCandidateError(f"no candidate has a predicted quality: {names}")
    return Decision(model=best.name, utilities=utilities, skipped=tuple(skipped), lam=lam)
