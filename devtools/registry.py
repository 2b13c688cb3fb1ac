"""Router registries for tests and benchmarks: a registry in a fresh bucket, and a second
version of the shipped router (same weights, another default λ: visible in every answer)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from devtools.configs import ARTIFACT
from devtools.s3_server import S3Server
from router_models.artifacts import MANIFEST_FILE, WEIGHTS_FILE, write_manifest
from router_models.registry import parse_registry_url
from router_models.registry.store import RouterRegistry


def new_registry(s3: S3Server, signing_key: bytes | None = None) -> RouterRegistry:
    """A registry at ``s3://<fresh bucket>/routers/prod``."""
    url = f"s3://{s3.new_bucket()}/routers/prod"
    return RouterRegistry(s3.client(), parse_registry_url(url), signing_key=signing_key)


def default_variant(dest: Path, default_lambda: float) -> Path:
    """The shipped router with another ``default_lambda``: same weights, a new manifest (and sha256)."""
    shutil.copytree(ARTIFACT, dest)
    manifest = json.loads((dest / MANIFEST_FILE).read_text())
    for generated in ("format", "format_version", "files"):
        manifest.pop(generated)
    return write_manifest(dest, {**manifest, "default_lambda": default_lambda}, [WEIGHTS_FILE])
