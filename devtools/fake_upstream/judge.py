"""The fake upstream as a judge model, so ``routeiq label`` runs in tests and demos without keys.

A chat or completions request whose prompt carries the bare directive ``[[fake judge]]``
(put it in the rubric file: ``routeiq label`` sends the rubric as the judge's system
message) is answered with a one-sentence verdict and the line ``SCORE: x``, where ``x`` is

- the value of the last ``[[fake graded=X]]`` marker in the prompt, verbatim. The fake
  ends each model's answer with that marker when the replayed query carries
  ``[[fake grades=m1:0.9,m2:0.25]]``, so a test knows the label every model should get;
  a value such as ``n/a`` or ``1.5`` exercises the labeller's handling of unusable verdicts;
- otherwise the first 4 bytes of sha256(the last user message) as a fraction of 2**32 - 1,
  4 decimals: deterministic, and different for different answers.

It never reads a rubric: it is a stand-in for a judge, not a judge.
"""

from __future__ import annotations

import hashlib
import re

_GRADED = re.compile(r"\[\[fake graded=([^\]\s]*)\]\]")


def verdict(prompt: str, judged: str) -> str:
    """The judge's answer to a prompt whose last user message is ``judged``."""
    marks = _GRADED.findall(prompt)
    if marks:
        score = marks[-1]
    else:
        digest = hashlib.sha256(judged.encode("utf-8", "surrogatepass")).digest()
        score = f"{int.from_bytes(digest[:4], 'big') / 0xFFFFFFFF:.4f}"
    return f"The answer was judged against the rubric.\nSCORE: {score}"


def graded_marker(grades: str, model: str) -> str | None:
    """The marker ending ``model``'s answer under ``grades=m1:0.9,m2:0.25`` (None: not graded)."""
    for pair in grades.split(","):
        name, _, value = pair.rpartition(":")
        if name == model:
            return f"[[fake graded={value}]]"
    return None
