"""The prediction cache: bounded LRU keyed by router version and prompt hash, cleared on a
router swap, and wired so a repeated prompt skips the encoder but not the request's λ."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from router_models.inference import learned_strategy
from router_models.inference.base import LoadOptions
from router_models.inference.learned_strategy import LearnedStrategy
from router_models.inference.prediction_cache import PredictionCache, prompt_key
from router_models.inference.types import Candidate, RouteQuery, RouterSpec

CANDS = (Candidate("small", 0.1), Candidate("large", 0.9))


class CountingPredictor:
    """Predicts ``large`` better by 0.3; counts the texts it embeds."""

    models = ["small", "large"]
    default_lambda = 0.1
    router_type = "fake"

    def __init__(self, digest: str = "a") -> None:
        self.manifest: dict[str, Any] = {"router_type": "fake", "files": {"weights.safetensors": digest}}
        self.embedded: list[str] = []

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += texts
        return np.tile(np.array([0.5, 0.8], np.float32), (len(texts), 1))


def test_bounded_least_recently_used_goes_first() -> None:
    cache = PredictionCache(max_entries=2)
    cache.put("v1", "a", np.array([1.0]))
    cache.put("v1", "b", np.array([2.0]))
    assert cache.get("v1", "a") is not None  # "a" is now the most recently used
    cache.put("v1", "c", np.array([3.0]))
    assert len(cache) == 2
    assert cache.get("v1", "b") is None
    assert cache.get("v1", "a")[0] == 1.0  # type: ignore[index]
    assert cache.get("v1", "c")[0] == 3.0  # type: ignore[index]


def test_keyed_by_router_version_and_prompt_hash() -> None:
    cache = PredictionCache()
    cache.put("v1", "hello", np.array([0.5, 0.8]))
    assert cache.get("v2", "hello") is None
    assert cache.get("v1", "hello ") is None
    assert prompt_key("v1", "hello") != prompt_key("v2", "hello")
    assert b"hello" not in prompt_key("v1", "hello")  # the prompt is not kept


def test_rows_are_copies_and_read_only() -> None:
    cache = PredictionCache()
    row = np.array([0.5, 0.8], np.float32)
    cache.put("v1", "q", row)
    row[0] = 0.0
    got = cache.get("v1", "q")
    assert got is not None and got[0] == 0.5
    with pytest.raises(ValueError):
        got[0] = 1.0


def test_zero_entries_disables_and_negative_is_refused() -> None:
    cache = PredictionCache(max_entries=0)
    cache.put("v1", "q", np.array([1.0]))
    assert len(cache) == 0
    with pytest.raises(ValueError, match="max_entries"):
        PredictionCache(max_entries=-1)


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> dict[str, CountingPredictor]:
    routers = {"/art/a": CountingPredictor("a"), "/art/b": CountingPredictor("b")}
    monkeypatch.setattr(learned_strategy, "_load", lambda artifact, options: routers[artifact])
    return routers


async def test_repeated_prompt_skips_the_encoder_but_keeps_its_own_lambda(loads: dict[str, CountingPredictor]) -> None:
    strategy = LearnedStrategy(RouterSpec("auto", "learned", "/art/a"))
    first = await strategy.route_batch([RouteQuery("auto", "same prompt", CANDS, lam=0.0)])
    again = await strategy.route_batch([RouteQuery("auto", "same prompt", CANDS, lam=1.0),
                                        RouteQuery("auto", "other prompt", CANDS, lam=0.0)])
    assert loads["/art/a"].embedded == ["same prompt", "other prompt"]
    assert [d.model for d in (*first, *again)] == ["large", "small", "large"]  # λ applied per request
    assert again[0].scores == pytest.approx({"small": 0.4, "large": -0.1})


async def test_a_router_swap_invalidates_the_cache(loads: dict[str, CountingPredictor]) -> None:
    strategy = LearnedStrategy(RouterSpec("auto", "learned", "/art/a"))
    await strategy.route_batch([RouteQuery("auto", "q", CANDS)])
    strategy.reload("/art/b")
    await strategy.route_batch([RouteQuery("auto", "q", CANDS)])
    assert loads["/art/b"].embedded == ["q"]


async def test_cache_size_comes_from_the_load_options(loads: dict[str, CountingPredictor]) -> None:
    strategy = LearnedStrategy(RouterSpec("auto", "learned", "/art/a"), LoadOptions(cache_entries=0))
    for _ in range(2):
        await strategy.route_batch([RouteQuery("auto", "q", CANDS)])
    assert loads["/art/a"].embedded == ["q", "q"]
