"""Read a decision-log export and draw the rows to label.

The input is what ``routeiq decisions export`` writes (all rows, not ``--training``): a
row is usable when it was answered (``status`` 200) and kept its query text (a gateway
with ``store_query: hash`` logs none, and a hash cannot be replayed). The served model is
``routed_to`` (the model whose answer the feedback rated; ``chosen`` when absent). The
sample is drawn with a seeded ``random.Random`` and kept in file order, so the same
export, ``--sample`` and ``--seed`` label the same prompts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import orjson


class LabelError(Exception):
    """A problem that stops ``routeiq label`` (the CLI prints it on one line, exit 2)."""


@dataclass(frozen=True)
class LoggedPrompt:
    """One logged request to label."""

    query: str
    candidates: tuple[str, ...]
    served: str
    feedback: float | None


def _prompt(path: Path, line_no: int, raw: bytes) -> LoggedPrompt | None:
    try:
        rec = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise LabelError(f"{path}:{line_no}: not JSON ({err})") from None
    if not isinstance(rec, dict):
        raise LabelError(f"{path}:{line_no}: not a JSON object")
    query, status = rec.get("query"), rec.get("status")
    if not isinstance(query, str) or not query.strip() or status != 200:
        return None
    candidates = rec.get("candidates")
    served = rec.get("routed_to") or rec.get("chosen") or ""
    feedback = rec.get("feedback")
    return LoggedPrompt(
        query=query,
        candidates=tuple(str(m) for m in candidates) if isinstance(candidates, dict | list) else (),
        served=str(served),
        feedback=float(feedback) if isinstance(feedback, int | float) and not isinstance(feedback, bool) else None,
    )


def read_export(path: Path) -> list[LoggedPrompt]:
    """The usable rows of an export file, in file order (a malformed line fails naming it)."""
    prompts = []
    try:
        with path.open("rb") as fh:
            for line_no, raw in enumerate(fh, 1):
                if raw.strip() and (p := _prompt(path, line_no, raw)) is not None:
                    prompts.append(p)
    except OSError as err:
        raise LabelError(f"cannot read {path}: {err.strerror or err}") from None
    return prompts


def sample(prompts: list[LoggedPrompt], n: int | None, seed: int) -> list[LoggedPrompt]:
    """``n`` of ``prompts`` drawn without replacement (all when ``n`` is None or larger), in file order."""
    if n is None or n >= len(prompts):
        return list(prompts)
    picked = sorted(random.Random(seed).sample(range(len(prompts)), n))
    return [prompts[i] for i in picked]
