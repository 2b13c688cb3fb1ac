"""A registry in a fresh bucket of the session's S3 server (``tests.registry_support``)."""

from __future__ import annotations

import pytest

from devtools.s3_server import S3Server
from router_models.registry import parse_registry_url
from router_models.registry.store import RouterRegistry
from tests.registry_support import KEY


@pytest.fixture
def registry_url(s3_server: S3Server) -> str:
    return f"s3://{s3_server.new_bucket()}/routers/prod"


@pytest.fixture
def registry(s3_server: S3Server, registry_url: str) -> RouterRegistry:
    return RouterRegistry(s3_server.client(), parse_registry_url(registry_url), signing_key=None)


@pytest.fixture
def signed_registry(s3_server: S3Server, registry_url: str) -> RouterRegistry:
    return RouterRegistry(s3_server.client(), parse_registry_url(registry_url), signing_key=KEY)
