"""Small router artifacts and registries in fresh buckets, for the registry's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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


def new_registry(s3: S3Server, signing_key: bytes | None = None) -> RouterRegistry:
    """A registry at ``s3://<fresh bucket>/routers/prod``."""
    url = f"s3://{s3.new_bucket()}/routers/prod"
    return RouterRegistry(s3.client(), parse_registry_url(url), signing_key=signing_key)


def default_variant(dest: Path, default_lambda: float) -> Path:
    """The shipped router with another ``default_lambda``: same weights, a new manifest (and sha256)."""
    import json
    import shutil

    from devtools.configs import ARTIFACT
    from router_models.artifacts import MANIFEST_FILE, WEIGHTS_FILE, write_manifest

    shutil.copytree(ARTIFACT, dest)
    manifest = json.loads((dest / MANIFEST_FILE).read_text())
    for generated in ("format", "format_version", "files"):
        manifest.pop(generated)
    return write_manifest(dest, {**manifest, "default_lambda": default_lambda}, [WEIGHTS_FILE])
