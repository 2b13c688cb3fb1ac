"""``routeiq gate``: promote a candidate router only if it is not worse than the current one.

Two independent views, because each can be fooled alone:

- **(a) the user's traffic**, from the decision log: off-policy value of each router's
  choices on the logged, rated requests (IPS and doubly robust, ``offpolicy``), compared
  paired, on the rows where the logged policy could have taken both routers' actions (its
  support; ``LoggedRow.supports``). It covers the user's own models and queries, but only
  where exploration covered the actions the candidate would take.
- **(b) a labelled split**, with the data README's protocol (Q@C_best ratio and C@Q_best):
  every model scored on every query, so no propensities are needed, but only for the models
  and kinds of query the split holds.

The candidate passes when, on every measure, it is not worse than the current router by
more than the stated margin. On the labelled split, by default (``margins.split_evidence ==
"point"``), the point estimates decide: Q@C_best ratio >= current's - ``margins.q_ratio``;
C@Q_best (% of the best single model's cost) <= current's + ``margins.c_pct`` (a router that
never reaches Q_best counts as infinitely expensive). With ``"better"`` the Q@C_best ratio
must instead be higher than the current's in at least ``margins.split_better_share`` of the
split's paired bootstrap resamples (``paired_bootstrap``): a loop then promotes only what
the split shows better, not a run of routers each not measurably worse than the last. The
report carries the paired comparison under either rule. On the
log, by default (``margins.ope_evidence == "interval"``), the candidate is refused when the
log shows it worse: the 95 % interval of the paired IPS or DR difference lies wholly below
``-margins.ope``. ``"point"`` refuses on the point estimate alone, as the first gate did.

Why the interval: the off-policy terms of a new model's answers weigh ``1/propensity`` (15 at
a 0.2 exploration rate over three models), so with the few hundred to a thousand held-out
rows a loop has, the paired difference's standard error is 0.05-0.1. Gating on the point
estimate with a 0.01 margin refused, by chance, candidates that were better on the labelled
split and on the test split: in one of four seeds of bench/learning_loop.py it refused all
ten candidates (IPS -0.06 to -0.24 with intervals spanning 0 in eight of them) and the loop
never left the cold start. The labelled split, with every model scored, carries the precise
comparison; the log guards against a candidate it shows to be worse. A gate without usable
log rows refuses: it cannot say (a).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from router_models.data import RoutingData
from router_models.evaluation.offpolicy import (
    LoggedRow,
    dr_terms,
    estimate,
    ips_terms,
    policy_actions,
    reward_model,
    usable_rows,
)
from router_models.evaluation.ope_evidence import OpeEvidence, SplitEvidence
from router_models.evaluation.paired_bootstrap import PairedComparison, compare
from router_models.evaluation.protocol import EvalReport, evaluate

SPLIT_ROWS_ADVISED = 1500
"""A labelled split smaller than this gets a warning in the report. In bench/learning_loop.py
(four seeds each, 2026-12-01) a 500-row split let noise decide between candidates a
hundredth apart: it refused ones better on the test split and passed worse ones, and the
loop recovered 42 % of the cold-start gap on average; with 1,500 rows, 87 %."""


class Predictor(Protocol):
    """What the gate needs of a router: its models and predicted quality per query."""

    @property
    def models(self) -> list[str]: ...

    def predict(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Margins:
    ope: float = 0.01
    """Quality points (0..1) the off-policy estimates may drop."""
    q_ratio: float = 0.01
    """How much lower the candidate's Q@C_best / Q_best may be."""
    c_pct: float = 5.0
    """Percentage points of C_best the candidate's C@Q_best may rise."""
    ope_evidence: str = OpeEvidence.INTERVAL.value
    """What refuses on the log: the 95 % interval below ``-ope`` (default), or the point estimate."""
    split_evidence: str = SplitEvidence.POINT.value
    """What passes on the labelled split's Q@C_best ratio: not worse by ``q_ratio`` (default), or better."""
    split_better_share: float = 0.9
    """With ``split_evidence="better"``: the share of paired resamples the candidate must win."""

    def __post_init__(self) -> None:
        if self.ope_evidence not in {e.value for e in OpeEvidence}:
            raise ValueError(f"ope_evidence must be 'interval' or 'point', not {self.ope_evidence!r}")
        if self.split_evidence not in {e.value for e in SplitEvidence}:
            raise ValueError(f"split_evidence must be 'point' or 'better', not {self.split_evidence!r}")


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """``routeiq decisions export`` rows (JSON lines); a malformed line fails with its number."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{n}: not a JSON object ({err.msg})") from None
    return rows


def columns(router: Predictor, texts: Sequence[str], models: Sequence[str]) -> np.ndarray:
    """The router's predictions in ``models`` order; ``-inf`` for a model it does not know."""
    pred = np.asarray(router.predict(list(texts)), dtype=np.float64) if texts else np.zeros((0, len(router.models)))
    out = np.full((len(texts), len(models)), -np.inf)
    own = {m: i for i, m in enumerate(router.models)}
    for j, m in enumerate(models):
        if m in own:
            out[:, j] = pred[:, own[m]]
    return out


def off_policy(current: Predictor, candidate: Predictor, rows: Sequence[LoggedRow],
               prices: Mapping[str, float]) -> dict[str, Any]:
    """IPS and DR values of both routers on the logged rows, and their paired differences."""
    models = sorted({c for r in rows for c in r.candidates})
    texts = [r.query for r in rows]
    qhat = reward_model(rows)
    acts = {name: policy_actions(rows, columns(router, texts, models), models, prices)
            for name, router in (("current", current), ("candidate", candidate))}
    keep = [i for i, r in enumerate(rows) if r.supports(acts["current"][i]) and r.supports(acts["candidate"][i])]
    rows = [rows[i] for i in keep]
    out: dict[str, Any] = {"rows": len(rows), "usable_rows": len(texts), "unsupported_rows": len(texts) - len(rows)}
    if not rows:
        return out
    terms = {}
    for name in ("current", "candidate"):
        actions = [acts[name][i] for i in keep]
        terms[name] = {"ips": ips_terms(rows, actions), "dr": dr_terms(rows, actions, qhat)}
        out[name] = {k: estimate(v).as_dict() for k, v in terms[name].items()}
        out[name]["agrees_with_log"] = float(np.mean([a == r.action for a, r in zip(actions, rows, strict=True)]))
    out["difference"] = {k: estimate(terms["candidate"][k] - terms["current"][k]).as_dict() for k in ("ips", "dr")}
    return out


def protocol(router: Predictor, split: RoutingData, train_mean: np.ndarray) -> EvalReport:
    """The README protocol on a labelled split, over the split's models."""
    return _protocol(columns(router, split.queries, split.models), split, train_mean)


def _protocol(pred: np.ndarray, split: RoutingData, train_mean: np.ndarray) -> EvalReport:
    if not np.isfinite(pred).any(axis=1).all():
        raise ValueError("the router knows none of the labelled split's models")
    return evaluate(pred, split.scores, split.prices, split.models, train_mean)


def ope_refusal(kind: str, diff: Mapping[str, float], margins: Margins) -> list[str]:
    """Why the log refuses the candidate on one estimator (empty: it does not)."""
    value, high = diff["value"], diff["ci95_high"]
    if margins.ope_evidence == OpeEvidence.POINT:
        refuse = value < -margins.ope
        return [f"off-policy {kind.upper()} value is {-value:.4f} lower (margin {margins.ope})"] if refuse else []
    if high < -margins.ope:
        return [f"off-policy {kind.upper()} value is {-value:.4f} lower, 95 % interval up to {high:+.4f} "
                f"(margin {margins.ope})"]
    return []


def verdict(ope: dict[str, Any] | None, cur: EvalReport, cand: EvalReport, margins: Margins,
            paired: PairedComparison | None = None) -> list[str]:
    """Why the candidate is refused (empty: it passes); ``paired`` is needed by ``split_evidence="better"``."""
    why = []
    if ope is None or not ope.get("usable_rows", ope["rows"]):
        why.append("no usable decision-log rows (rated, answered by the routed model, with a propensity)")
    elif ope["rows"] == 0:
        why.append(f"no decision-log row where the logging policy could have taken both routers' actions "
                   f"({ope['unsupported_rows']} usable rows lacked that support)")
    else:
        for k in ("ips", "dr"):
            why.extend(ope_refusal(k, ope["difference"][k], margins))
    why.extend(split_refusal(cur, cand, margins, paired))
    cur_c = cur.c_at_q_best_pct if cur.c_at_q_best_pct is not None else math.inf
    cand_c = cand.c_at_q_best_pct if cand.c_at_q_best_pct is not None else math.inf
    if cand_c > cur_c + margins.c_pct:
        why.append(f"C@Q_best {cand_c:.1f} % > current {cur_c:.1f} % + {margins.c_pct}")
    return why


def split_refusal(cur: EvalReport, cand: EvalReport, margins: Margins, paired: PairedComparison | None) -> list[str]:
    """Why the labelled split's Q@C_best ratio refuses the candidate (empty: it does not)."""
    if margins.split_evidence == SplitEvidence.BETTER:
        if paired is None:
            raise ValueError("split_evidence 'better' needs the paired comparison")
        if paired.candidate_better_share < margins.split_better_share:
            return [f"Q@C_best ratio higher in {100 * paired.candidate_better_share:.1f} % of paired resamples "
                    f"of the labelled split (needs {100 * margins.split_better_share:.0f} %)"]
        return []
    cur_ratio, cand_ratio = cur.q_at_c_best / cur.q_best, cand.q_at_c_best / cand.q_best
    if not cand_ratio >= cur_ratio - margins.q_ratio:
        return [f"Q@C_best ratio {cand_ratio:.4f} < current {cur_ratio:.4f} - {margins.q_ratio}"]
    return []


def run_gate(current: Predictor, candidate: Predictor, log: Sequence[Mapping[str, Any]], split: RoutingData,
             train_mean: np.ndarray, prices: Mapping[str, float], margins: Margins | None = None,
             ) -> tuple[dict[str, Any], dict[str, EvalReport]]:
    """The gate's JSON report and both protocol reports (for the plot)."""
    margins = margins or Margins()
    rows, skipped = usable_rows(log)
    ope = off_policy(current, candidate, rows, prices) if rows else None
    preds = {"current": columns(current, split.queries, split.models),
             "candidate": columns(candidate, split.queries, split.models)}
    reports = {k: _protocol(pred, split, train_mean) for k, pred in preds.items()}
    paired = compare(preds["current"], preds["candidate"], split.scores, split.prices, int(np.argmax(train_mean)))
    refused = verdict(ope, reports["current"], reports["candidate"], margins, paired)
    report = {
        "passed": not refused,
        "refused_because": refused,
        "margins": margins.__dict__,
        "off_policy": ope if ope is not None else {"rows": 0},
        "log_rows_skipped": skipped,
        "protocol": {k: {m: v for m, v in r.to_dict().items() if m != "curve"} for k, r in reports.items()},
        "split_paired_bootstrap": paired.as_dict(),
        "labelled_rows": len(split),
        "warnings": split_warnings(len(split)),
    }
    return report, reports


def split_warnings(rows: int) -> list[str]:
    """What the report says about a labelled split too small to tell close candidates apart."""
    if rows >= SPLIT_ROWS_ADVISED:
        return []
    return [f"the labelled split has {rows} rows; with fewer than {SPLIT_ROWS_ADVISED:,} its Q@C_best moves by "
            "more than the margins between close candidates, so chance decides (label more with `routeiq label`; "
            "docs/routing.md, the gate)"]
