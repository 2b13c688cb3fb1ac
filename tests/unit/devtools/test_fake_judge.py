"""The fake upstream's judge: ``[[fake judge]]`` answers ``SCORE: x``, x known to the test.

Driven over HTTP with the official SDK against the session's fake upstream (loopback)."""

from __future__ import annotations

import openai

from app.label.judge import parse_score
from devtools.fake_upstream.faults import Faults, from_request
from devtools.fake_upstream.judge import graded_marker, verdict
from devtools.servers import ThreadedFakeUpstream


def test_a_bare_directive_turns_a_knob_on() -> None:
    assert from_request(Faults(), {}, {}, "rubric [[fake judge]]").judge == "1"
    assert from_request(Faults(), {}, {}, "[[fake grades=a:0.5,b:1]]").grades == "a:0.5,b:1"


def test_the_verdict_is_the_last_graded_marker_or_a_hash() -> None:
    assert verdict("x [[fake graded=0.2]] y [[fake graded=0.7]]", "y").endswith("\nSCORE: 0.7")
    hashed = parse_score(verdict("no marker", "an answer"))
    assert hashed is not None and hashed == parse_score(verdict("other prompt", "an answer"))
    assert hashed != parse_score(verdict("no marker", "another answer"))
    assert graded_marker("vendor/m:1:0.4,b:0.9", "vendor/m:1") == "[[fake graded=0.4]]"
    assert graded_marker("a:0.4", "b") is None


def test_answers_carry_their_grade_and_the_judge_reads_it(upstream: ThreadedFakeUpstream) -> None:
    client = openai.OpenAI(base_url=upstream.url, api_key="sk-up", max_retries=0)
    query = "what is 2+2? [[fake grades=m1:0.8,m2:0.1]]"
    answers = {m: client.chat.completions.create(model=m, messages=[{"role": "user", "content": query}])
               .choices[0].message.content or "" for m in ("m1", "m2", "m3")}
    assert answers["m1"].endswith("[[fake graded=0.8]]") and answers["m2"].endswith("[[fake graded=0.1]]")
    assert "graded" not in answers["m3"]
    for model, expected in (("m1", 0.8), ("m2", 0.1)):
        judged = client.chat.completions.create(model="judge", messages=[
            {"role": "system", "content": "Be fair. [[fake judge]]"},
            {"role": "user", "content": f"Query:\n{query}\n\nAnswer:\n{answers[model]}"}])
        assert parse_score(judged.choices[0].message.content) == expected
