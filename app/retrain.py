"""``routeiq retrain``: the learning loop as one command: export, train, gate, publish, promote.

Each step is an existing piece, run in order over one work directory so every
intermediate file stays for inspection:

1. **export** the decision log (``decisions/log.jsonl``, every row) and its rated rows in
   training form (``decisions/feedback.jsonl``), then **split** them by query
   (``holdout_split``): the rows whose query text hashes into the ``gate_holdout`` share are
   the gate's off-policy rows (``decisions/gate-log.jsonl``) and never train; the rest train
   (``decisions/feedback-train.jsonl``);
2. **fetch** the version the registry serves for the router (``current/``);
3. **train** a candidate on the base set plus the feedback (partial labels, inverse
   propensity weighted; ``candidate/``);
4. **gate** it against the current one (off-policy on the log, protocol on the labelled
   split; ``gate/gate.json`` and ``gate/gate.png``);
5. **publish** the candidate to the registry (always: a refused version stays
   inspectable) and **promote** it only when the gate passed (and ``promote`` is set).

Why the split: a router evaluated off-policy on rows it was trained on is judged on its own
answers. In the first loop with the stacked-prior KNN (bench/RESULTS-learning-loop.md) the
gate, reading the whole log, estimated the served version 0.06-0.1 above its true value on
the logged queries and refused five candidates on IPS that were truly 0.011-0.012 better
there (and better on the labelled split). Hashing the query, not the request, keeps a
repeated query on one side, and the same share is held out in every round, so no version
ever trains on a row a later gate reads.

Lives in ``app`` because the export reads the gateway's decision store; the training
and gate are ``router_models``'.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.access.decision_store import DecisionStore, export_jsonl

GATE_HOLDOUT = 0.2
"""Default share of the log the gate reads and training never sees (see the module docstring)."""


@dataclass
class RetrainPlan:
    router: str
    """The gateway router (registry pointer) to improve."""
    work: Path
    base_data: Path
    eval_data: Path
    candidates: Path
    router_type: str = "finetuned"
    folds: int = 5
    promote: bool = True
    margins: dict[str, Any] = field(default_factory=dict)
    """``router_models.evaluation.gate.Margins`` fields (the margins, ``ope_evidence``, ``split_evidence``)."""
    hparam: dict[str, Any] | None = None
    gate_holdout: float = GATE_HOLDOUT
    """Share of logged queries (by hash) kept out of training for the gate's off-policy view."""


def served_embedder(current: Any) -> Any:
    """The embedder a candidate trains with: the served router's kind. A router trained on
    the static embedder (for its speed) stays static; the gate compares quality only, and
    would otherwise promote a MiniLM candidate that costs ~30x the CPU per query."""
    from router_models.embedding import EmbedderConfig
    from router_models.static_embedding import STATIC, static_config

    served = current.embedder_config
    return static_config(served.max_seq_length) if served.kind == STATIC else EmbedderConfig()


@dataclass(frozen=True)
class Exported:
    log: Path
    feedback: Path
    log_rows: int
    feedback_rows: int


@dataclass
class RetrainResult:
    version: str
    passed: bool
    promoted: bool
    reasons: list[str]
    feedback_rows: int
    """Rated rows trained on (the held-out share excluded)."""
    log_rows: int
    gate_rows: int = 0
    """Log rows held out for the gate's off-policy view."""
    trained_on: dict[str, Any] = field(default_factory=dict)
    """The process that trained (pid, host; the Ray node id under ``--ray``): result.json."""
    warnings: list[str] = field(default_factory=list)
    """The gate's (``gate.json``): e.g. a labelled split too small to decide on."""

    def summary(self) -> str:
        if self.promoted:
            return (f"promoted {self.version} (trained on {self.feedback_rows} rated rows of {self.log_rows}; "
                    f"{self.gate_rows} held out for the gate)")
        verdict = "passed the gate, not promoted" if self.passed else "refused: " + "; ".join(self.reasons)
        return f"published {self.version}, {verdict}"


async def export_decisions(store: DecisionStore, dest: Path) -> Exported:
    """The full log and its training form, side by side under ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    log, feedback = dest / "log.jsonl", dest / "feedback.jsonl"
    with log.open("w", encoding="utf-8") as fh:
        n_log = await export_jsonl(store, fh)
    with feedback.open("w", encoding="utf-8") as fh:
        n_feedback = await export_jsonl(store, fh, training=True)
    return Exported(log, feedback, n_log, n_feedback)


def held_out(query: object, share: float) -> bool:
    """Whether a logged query belongs to the gate's share (stable across rounds and processes)."""
    if not isinstance(query, str) or share <= 0:
        return False
    digest = hashlib.sha256(query.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def holdout_split(exported: Exported, share: float) -> tuple[Path, Path, int, int]:
    """Training feedback without the held-out queries, and the log rows with only them:
    (feedback path, gate log path, training rows, gate rows)."""
    train, gate = exported.feedback.with_name("feedback-train.jsonl"), exported.log.with_name("gate-log.jsonl")
    counts = []
    for src, dst, keep in ((exported.feedback, train, False), (exported.log, gate, True)):
        n = 0
        with src.open(encoding="utf-8") as fin, dst.open("w", encoding="utf-8") as fout:
            for line in fin:
                if line.strip() and held_out(json.loads(line).get("query"), share) == keep:
                    fout.write(line)
                    n += 1
        counts.append(n)
    return train, gate, counts[0], counts[1]


def single_model_means(base: Any, split: Any) -> Any:
    """Each split model's mean score, from which the protocol picks the best single model:
    the base set's mean where it scores the model, else the split's own (a user's new model
    is in the labelled split, from ``routeiq label``, long before any base set has it)."""
    import numpy as np

    own = dict(zip(base.models, base.scores.mean(0), strict=True))
    return np.array([own.get(m, split.scores[:, j].mean()) for j, m in enumerate(split.models)])


def retrain(plan: RetrainPlan, exported: Exported, registry: Any) -> RetrainResult:
    """Train, gate, publish and maybe promote from an export (blocking: training is CPU-bound)."""
    from router_models.data import load_prices, load_routing_data
    from router_models.evaluation.gate import Margins, read_log, run_gate
    from router_models.evaluation.report import plot_report
    from router_models.inference.learned import LearnedRouter
    from router_models.training.pipeline import TrainConfig, train

    if exported.feedback_rows == 0:
        raise ValueError("the decision log has no rated request to learn from (POST /v1/feedback)")
    feedback, log, n_feedback, n_gate = holdout_split(exported, plan.gate_holdout)
    if n_feedback == 0:
        raise ValueError(f"every rated request is in the gate's held-out share ({plan.gate_holdout}); "
                         "nothing left to train on")
    current_dir = plan.work / "current"
    registry.fetch(registry.current(plan.router), current_dir)
    current = LearnedRouter.load(current_dir)
    candidate_dir = plan.work / "candidate"
    train(TrainConfig(router_type=plan.router_type, data=plan.base_data, feedback=(feedback,),
                      candidates=plan.candidates, out=candidate_dir, folds=plan.folds, hparam=plan.hparam,
                      embedder=served_embedder(current)))
    split = load_routing_data(plan.eval_data, plan.candidates)
    train_mean = single_model_means(load_routing_data(plan.base_data, plan.candidates), split)
    report, curves = run_gate(current, LearnedRouter.load(candidate_dir), read_log(log),
                              split, train_mean, load_prices(plan.candidates), Margins(**plan.margins))
    gate_dir = plan.work / "gate"
    gate_dir.mkdir(parents=True, exist_ok=True)
    (gate_dir / "gate.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot_report(curves, gate_dir / "gate.png", title=f"retrain gate: {plan.router}")
    version = registry.publish(candidate_dir).version
    promoted = bool(report["passed"] and plan.promote)
    if promoted:
        registry.promote(plan.router, version)
    return RetrainResult(version, bool(report["passed"]), promoted, list(report["refused_because"]), n_feedback,
                         exported.log_rows, n_gate, warnings=list(report["warnings"]))
