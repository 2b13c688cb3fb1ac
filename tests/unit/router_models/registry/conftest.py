"""A registry in a fresh bucket of the session's S3 server, and small artifacts to publish."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devtools.s3_server import S3Server
from router_models.artifacts import save_artifact
from router_models.registry import parse_registry_url
from router_models.registry.store import RouterRegistry

KEY = b"registry-test-key"


def make_artifact(root: Path, lam: float = 0.2, *, signing_key: bytes | None = None) -> Path:
    """A tiny valid artifact (two models, one tensor) whose manifest has an eval and a data hash."""
    manifest = {"router_type": "test", "models": ["a", "b"], "default_lambda": lam,
                "training_data": {"sha256": "ab" * 32},
                "eval": {"holdout": {"quality_at_default": 0.5, "cost_at_default": 0.25}}}
    return save_artifact(root, manifest, {"w": np.arange(8, dtype=np.float32) * lam}, signing_key=signing_key)


@pytest.fixture
def registry_url(s3_server: S3Server) -> str:
    return f"s3://{s3_server.new_bucket()}/routers/prod"


@pytest.fixture
def registry(s3_server: S3Server, registry_url: str) -> RouterRegistry:
    return RouterRegistry(s3_server.client(), parse_registry_url(registry_url), signing_key=None)


@pytest.fixture
def signed_registry(s3_server: S3Server, registry_url: str) -> RouterRegistry:
    return RouterRegistry(s3_server.client(), parse_registry_url(registry_url), signing_key=KEY)
