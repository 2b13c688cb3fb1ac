"""Off-policy estimates of a router's quality from the gateway's decision log.

The log holds, per routed request, the query, the candidates offered, the model served
(``routed_to``), the probability with which the logging policy chose it (``propensity``,
logged since exploration exists) and, when the client rated it, a quality score
(``feedback``). That is contextual-bandit feedback: one model's score per query. The value
of another router ``π`` (the mean quality it would have obtained) is estimated two ways:

- **IPS** (inverse propensity scoring): ``mean(1[π(x) = a] · r / p)``. Unbiased whenever every
  action ``π`` takes had a logged propensity > 0 (exploration's job), but high-variance.
- **Doubly robust**: ``mean(q̂(x, π(x)) + 1[π(x) = a] · (r - q̂(x, a)) / p)``, with a reward
  model ``q̂``. Unbiased if either the propensities or ``q̂`` are right, and far less noisy
  when ``q̂`` is good. ``q̂`` here is shared by both routers compared (so a difference
  reflects their choices, not their reward models): per model, the mean logged reward of
  that model (a model never served gets the mean of all rewards). A constant per model is a
  weak ``q̂``, chosen because it cannot favour either router.

**Support.** Both estimators are unbiased for a router only where the logging policy could
have taken that router's action (probability > 0). Exploration covers a few models, so a
router that picks a known model the log never offered on a row would be credited 0 there by
IPS, whatever that model's answer is worth. Rows log the policy's whole distribution
(``policy``), and the gate compares two routers on the rows where both of their actions were
supported (``LoggedRow.supports``); rows logged before that (``policy`` null) count as
supported, as before.

Confidence intervals are normal approximations (95 %: ±1.96 standard errors of the
per-row terms). The comparison of two routers is **paired**: the interval is on the mean of
the per-row differences of their terms, which cancels the variance they share.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Z95 = 1.959963984540054


@dataclass(frozen=True)
class LoggedRow:
    """One usable decision-log row: rated, answered by the model the policy chose."""

    query: str
    candidates: tuple[str, ...]
    action: str
    reward: float
    propensity: float
    lam: float
    policy: Mapping[str, float] | None = field(default=None, compare=False)
    """The logging policy's probability of each model on this row (absent: 0); ``None`` for
    rows logged before it was recorded, whose support is unknown."""

    def supports(self, action: str) -> bool:
        """Whether the logging policy could have taken ``action`` here (unknown support: yes)."""
        return self.policy is None or self.policy.get(action, 0.0) > 0.0


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"value": self.value, "ci95_low": self.low, "ci95_high": self.high, "n": self.n}


def usable_rows(records: Iterable[Mapping[str, Any]], default_lam: float = 0.0) -> tuple[list[LoggedRow], int]:
    """The rows an off-policy estimate can use, and how many were skipped.

    A row is used when it was answered (status 200) by the model the routing policy chose
    (``chosen == routed_to``: a provider fallback's answer was not the policy's action), has
    feedback in [0, 1], a propensity in (0, 1] and its query text.
    """
    out, skipped = [], 0
    for rec in records:
        fb, p = rec.get("feedback"), rec.get("propensity")
        ok = (rec.get("status") == 200 and rec.get("chosen") == rec.get("routed_to") and rec.get("query")
              and fb is not None and 0.0 <= float(fb) <= 1.0 and p is not None and 0.0 < float(p) <= 1.0)
        if not ok:
            skipped += 1
            continue
        cands = tuple(rec.get("candidates") or ()) or (str(rec["routed_to"]),)
        if rec["routed_to"] not in cands:
            cands = (*cands, str(rec["routed_to"]))
        lam = rec.get("lambda")
        out.append(LoggedRow(str(rec["query"]), cands, str(rec["routed_to"]), float(fb), float(p),
                             float(lam) if lam is not None else default_lam, logged_policy(rec)))
    return out, skipped


def logged_policy(rec: Mapping[str, Any]) -> dict[str, float] | None:
    """A row's logged distribution, or ``None`` when absent or malformed (support unknown)."""
    raw = rec.get("policy")
    if not isinstance(raw, Mapping) or rec.get("routed_to") not in raw:
        return None
    out = {}
    for model, prob in raw.items():
        if not isinstance(model, str) or isinstance(prob, bool) or not isinstance(prob, int | float):
            return None
        if not 0.0 <= float(prob) <= 1.0:
            return None
        out[model] = float(prob)
    return out


def policy_actions(rows: Sequence[LoggedRow], quality: np.ndarray, models: Sequence[str],
                   prices: Mapping[str, float]) -> list[str]:
    """What a router would serve for each row: ``argmax(quality - λ·price)`` over the row's
    candidates it can score (ties to the cheaper), as ``decide`` serves; a row with none it
    can score gets the cheapest candidate, as the gateway's fallback without a configured
    ``fallback_model`` does. ``quality`` is the router's prediction, rows by ``models``."""
    col = {m: i for i, m in enumerate(models)}
    out = []
    for row, q in zip(rows, quality, strict=True):
        scored = [(float(q[col[c]]) - row.lam * prices.get(c, 0.0), -prices.get(c, 0.0), c)
                  for c in row.candidates if c in col and math.isfinite(float(q[col[c]]))]
        out.append(max(scored)[2] if scored else min(row.candidates, key=lambda c: prices.get(c, 0.0)))
    return out


def reward_model(rows: Sequence[LoggedRow]) -> dict[str, float]:
    """``q̂``: each served model's mean logged reward; ``""`` holds the mean of all rewards."""
    by: dict[str, list[float]] = {}
    for r in rows:
        by.setdefault(r.action, []).append(r.reward)
    out = {m: float(np.mean(v)) for m, v in by.items()}
    out[""] = float(np.mean([r.reward for r in rows])) if rows else 0.0
    return out


def ips_terms(rows: Sequence[LoggedRow], actions: Sequence[str]) -> np.ndarray:
    return np.array([(a == r.action) * r.reward / r.propensity for r, a in zip(rows, actions, strict=True)])


def dr_terms(rows: Sequence[LoggedRow], actions: Sequence[str], qhat: Mapping[str, float]) -> np.ndarray:
    def q(model: str) -> float:
        return qhat.get(model, qhat.get("", 0.0))

    return np.array([q(a) + (a == r.action) * (r.reward - q(r.action)) / r.propensity
                     for r, a in zip(rows, actions, strict=True)])


def estimate(terms: np.ndarray) -> Estimate:
    """Mean of per-row terms with a 95 % normal-approximation interval."""
    n = len(terms)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = float(terms.mean())
    half = Z95 * float(terms.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    return Estimate(mean, mean - half, mean + half, n)
