"""Small router artifacts for the registry's tests (registries themselves: ``devtools.registry``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from devtools.registry import default_variant, new_registry
from router_models.artifacts import save_artifact

__all__ = ["KEY", "default_variant", "make_artifact", "new_registry"]

KEY = b"registry-test-key"


def make_artifact(root: Path, lam: float = 0.2, *, signing_key: bytes | None = None) -> Path:
    """A tiny valid artifact (two models, one tensor) whose manifest has an eval and a data hash."""
    manifest = {"router_type": "test", "models": ["a", "b"], "default_lambda": lam,
                "training_data": {"sha256": "ab" * 32},
                "eval": {"holdout": {"quality_at_default": 0.5, "cost_at_default": 0.25}}}
    return save_artifact(root, manifest, {"w": np.arange(8, dtype=np.float32) * lam}, signing_key=signing_key)
