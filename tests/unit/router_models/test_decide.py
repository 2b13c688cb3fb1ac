from __future__ import annotations

import pytest

from router_models.inference.decide import Decision, NoScoredCandidateError, decide
from router_models.inference.types import Candidate

CANDS = (Candidate("big", 0.9), Candidate("mid", 0.2), Candidate("small", 0.1))
QUALITY = {"big": 0.80, "mid": 0.60, "small": 0.50}


def test_cost_falls_as_lambda_rises() -> None:
    prices = {c.name: c.price for c in CANDS}
    picked = [decide(QUALITY, CANDS, lam).model for lam in (0.0, 0.1, 0.3, 0.5, 1.0, 5.0)]
    costs = [prices[m] for m in picked]
    assert costs == sorted(costs, reverse=True)
    assert picked[0] == "big" and picked[-1] == "small"


def test_utilities_are_quality_minus_lambda_price() -> None:
    d = decide(QUALITY, CANDS, 0.4)
    assert d.utilities == pytest.approx({"big": 0.8 - 0.36, "mid": 0.6 - 0.08, "small": 0.5 - 0.04})
    assert d.model == "mid" and d.lam == 0.4


def test_unknown_candidates_are_skipped_not_guessed() -> None:
    cands = (Candidate("unknown-cheap", 0.0), *CANDS)
    d = decide(QUALITY, cands, 0.0)
    assert d.model == "big"
    assert d.skipped == ("unknown-cheap",)
    assert "unknown-cheap" not in d.utilities


def test_only_given_candidates_are_considered() -> None:
    assert decide(QUALITY, (Candidate("mid", 0.2), Candidate("small", 0.1)), 0.0).model == "mid"


def test_ties_go_to_the_cheaper_model() -> None:
    quality = {"a": 0.5, "b": 0.5}
    d = decide(quality, (Candidate("a", 0.9), Candidate("b", 0.1)), 0.0)
    assert d.model == "b"


def test_no_scored_candidate_raises() -> None:
    with pytest.raises(NoScoredCandidateError):
        decide(QUALITY, (Candidate("other", 0.1),), 0.1)


@pytest.mark.parametrize("lam", [-0.1, float("nan"), float("inf")])
def test_bad_lambda_raises(lam: float) -> None:
    with pytest.raises(ValueError, match="lam"):
        decide(QUALITY, CANDS, lam)


def test_decision_unpacks_as_model_and_utilities() -> None:
    model, utilities = decide(QUALITY, CANDS, 0.0)
    assert isinstance(decide(QUALITY, CANDS, 0.0), Decision)
    assert model == "big" and set(utilities) == {"big", "mid", "small"}
