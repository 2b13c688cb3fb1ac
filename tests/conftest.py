"""Session-wide fixtures: environment, the fake upstream."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Before anything imports ray.serve or litellm: these are read at import time.
os.environ.setdefault("RAY_SERVE_THROUGHPUT_OPTIMIZED", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from devtools.servers import ThreadedFakeUpstream


@pytest.fixture(scope="session")
def upstream() -> Iterator[ThreadedFakeUpstream]:
    """The fake OpenAI-compatible upstream, shared by the session."""
    server = ThreadedFakeUpstream().start()
    yield server
    server.stop()
