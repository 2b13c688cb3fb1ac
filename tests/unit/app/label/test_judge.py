"""The judge's verdict format: the last ``SCORE: x`` line, x in [0, 1]; anything else is unusable."""

from __future__ import annotations

import pytest

from app.label.judge import FORMAT_RULE, judge_messages, parse_score


@pytest.mark.parametrize(("verdict", "score"), [
    ("SCORE: 0.73", 0.73),
    ("The answer is right but terse.\nSCORE: 0.8\n", 0.8),
    ("score: 1", 1.0),
    ("**SCORE: 0.5**", 0.5),
    ("Score = .25", 0.25),
    ("The rubric asks for `SCORE: x`.\nReasoning...\nSCORE: 0.1\nSCORE: 0.9", 0.9),
    ("SCORE: 0", 0.0),
])
def test_the_last_score_line_is_the_verdict(verdict: str, score: float) -> None:
    assert parse_score(verdict) == pytest.approx(score)


@pytest.mark.parametrize("verdict", [
    None, "", "I think it is good.", "SCORE: 1.5", "SCORE: -0.2", "SCORE: n/a", "my SCORE: 0.7 overall",
    "SCORE: 0.7 out of 1",
])
def test_an_unusable_verdict_has_no_score(verdict: str | None) -> None:
    assert parse_score(verdict) is None


def test_the_judge_sees_rubric_format_rule_query_and_answer() -> None:
    system, user = judge_messages("Be strict.\n", "What is 2+2?", "4")
    assert system == {"role": "system", "content": f"Be strict.\n\n{FORMAT_RULE}"}
    assert user["role"] == "user"
    assert "What is 2+2?" in user["content"] and user["content"].endswith("Answer:\n4")
