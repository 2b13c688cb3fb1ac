"""The judge's prompt and the parser of its verdict.

The judge gets the rubric file's text as its system message, followed by the one format
rule the parser relies on, and the query and the answer as the user message. The verdict
is the **last** line of the form ``SCORE: x`` (case-insensitive, ``x`` a decimal number,
optionally wrapped in ``**`` as chat models like to): the judge may reason first, and a
rubric may quote the format in its own text. A verdict without such a line, or with ``x``
outside [0, 1], is unusable: the labeller skips that score and counts it, because a
guessed score would be a wrong label, and one chatty answer must not stop a paid run.
"""

from __future__ import annotations

import math
import re

FORMAT_RULE = (
    "Judge the answer to the query against the rubric above. End your reply with one line of the form "
    "`SCORE: x`, where x is a number from 0 (worst) to 1 (best), for example `SCORE: 0.73`."
)
_SCORE = re.compile(r"^[\s*`>#-]*score\s*[:=]\s*\**\s*([0-9]*\.?[0-9]+)\s*\**`?\s*$", re.IGNORECASE | re.MULTILINE)


def judge_messages(rubric: str, query: str, answer: str) -> list[dict[str, str]]:
    """The chat messages asking the judge to score ``answer`` to ``query`` under ``rubric``."""
    return [
        {"role": "system", "content": f"{rubric.strip()}\n\n{FORMAT_RULE}"},
        {"role": "user", "content": f"Query:\n{query}\n\nAnswer:\n{answer}"},
    ]


def parse_score(verdict: str | None) -> float | None:
    """The score of the last ``SCORE: x`` line, or None when there is none or it is not in [0, 1]."""
    found = _SCORE.findall(verdict or "")
    if not found:
        return None
    score = float(found[-1])
    return score if math.isfinite(score) and 0.0 <= score <= 1.0 else None
