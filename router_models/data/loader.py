"""Read a routing split (JSONL) and the candidate price list into arrays.

Prices follow the data README's protocol: ``price(m) = (input_price + output_price) / 2``
in $ per 1M tokens. Model order is the order of the first row's ``scores`` (file order),
kept everywhere so that columns of ``scores`` line up with ``models`` and ``prices``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "routing"
DEFAULT_TRAIN = DATA_DIR / "train.jsonl"
DEFAULT_TEST = DATA_DIR / "test.jsonl"
DEFAULT_CANDIDATES = DATA_DIR / "llm_candidates.json"


@dataclass(frozen=True)
class RoutingData:
    """One split: queries, a (n, m) score matrix in [0, 1], models and their prices.

    A split merged with decision-log feedback (``router_models.data.partial``) is
    *partial*: a score is NaN where that model did not answer that query, and ``weights``
    holds each row's training weight (inverse propensity for feedback rows, 1 otherwise).
    """

    queries: list[str]
    scores: np.ndarray
    models: list[str]
    prices: np.ndarray
    weights: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.queries)

    @property
    def partial(self) -> bool:
        return bool(np.isnan(self.scores).any()) or self.weights is not None

    def full_rows(self) -> np.ndarray:
        """Indices of the rows that score every model (what the protocol can evaluate)."""
        return np.flatnonzero(~np.isnan(self.scores).any(axis=1))

    def mean_scores(self) -> np.ndarray:
        """Each model's mean score over the rows that score it."""
        return np.nanmean(self.scores, axis=0)

    def subset(self, idx: np.ndarray | list[int]) -> RoutingData:
        """Rows ``idx`` of this split (same models and prices)."""
        idx = np.asarray(idx)
        weights = self.weights[idx] if self.weights is not None else None
        return RoutingData([self.queries[i] for i in idx], self.scores[idx], self.models, self.prices, weights)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_prices(candidates_path: str | Path = DEFAULT_CANDIDATES) -> dict[str, float]:
    """Model name -> mean of input and output price ($/1M tokens)."""
    raw = json.loads(Path(candidates_path).read_text(encoding="utf-8"))
    return {name: (float(v["input_price"]) + float(v["output_price"])) / 2 for name, v in raw.items()}


def load_routing_data(
    path: str | Path = DEFAULT_TRAIN,
    candidates_path: str | Path = DEFAULT_CANDIDATES,
    models: list[str] | None = None,
) -> RoutingData:
    """Load a JSONL split; ``models`` fixes the column order (default: file order).

    Every row must score every model: a missing score is an error, not a zero, because
    a silent zero would bias both training targets and the evaluation.
    """
    queries: list[str] = []
    rows: list[dict[str, float]] = []
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            queries.append(str(rec["query"]))
            rows.append(rec["scores"])
            if models is None:
                models = list(rec["scores"])
            missing = set(models) - set(rec["scores"])
            if missing:
                raise ValueError(f"{path}:{line_no}: no score for {sorted(missing)}")
    if not rows or models is None:
        raise ValueError(f"{path}: no rows")
    prices_by_name = load_prices(candidates_path)
    unknown = [m for m in models if m not in prices_by_name]
    if unknown:
        raise ValueError(f"{candidates_path}: no price for {unknown}")
    scores = np.array([[float(r[m]) for m in models] for r in rows], dtype=np.float32)
    prices = np.array([prices_by_name[m] for m in models], dtype=np.float64)
    return RoutingData(queries, scores, list(models), prices)
