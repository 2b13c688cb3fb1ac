"""Shared fixtures: one embedder and one small trained artifact per session.

Small slices of the shipped data keep the whole directory under ~2 minutes on 2 cores;
embeddings are cached under pytest's temp dir, never in the repository.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from router_models.data import DEFAULT_TEST, DEFAULT_TRAIN, load_routing_data
from router_models.embedding import Embedder, EmbedderConfig

N_TRAIN, N_EVAL = 1200, 300


def write_slice(src: Path, dst: Path, n: int, seed: int) -> Path:
    lines = src.read_text(encoding="utf-8").splitlines()
    idx = np.random.default_rng(seed).choice(len(lines), size=n, replace=False)
    dst.write_text("\n".join(lines[i] for i in sorted(idx)) + "\n", encoding="utf-8")
    return dst


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder(EmbedderConfig())


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("routing")
    write_slice(DEFAULT_TRAIN, root / "train.jsonl", N_TRAIN, seed=1)
    write_slice(DEFAULT_TEST, root / "eval.jsonl", N_EVAL, seed=2)
    return root


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emb-cache")


def train_slice(data_dir: Path, cache_dir: Path, out: Path, router_type: str, hparam: dict, folds: int = 2) -> Path:
    """Train ``router_type`` on the train slice through the real pipeline (``folds`` CV folds; 1: none)."""
    from router_models.training.pipeline import TrainConfig, train

    cfg = TrainConfig(
        router_type=router_type, data=data_dir / "train.jsonl", out=out, folds=folds, cache_dir=cache_dir,
        hparam=hparam,
    )
    train(cfg)
    return out


@pytest.fixture(scope="session")
def trained_mlp(data_dir: Path, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MLP router trained through the real pipeline (llmrouter classes included)."""
    out = tmp_path_factory.mktemp("artifact") / "mlp"
    return train_slice(data_dir, cache_dir, out, "mlp", {"n_seeds": 1, "epochs": 15})


@pytest.fixture(scope="session")
def eval_split(data_dir: Path):
    train = load_routing_data(data_dir / "train.jsonl")
    return train, load_routing_data(data_dir / "eval.jsonl", models=train.models)


def manifest_of(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())
