"""``build_scoring``: a scorer replica's service starts on the registry pointer's version and
follows it (the shipped learned router, a real S3-compatible server, no Ray)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from app.config import RegistrySettings, ScorerSyncSettings
from deployments.router_scoring import RouterScoring
from deployments.router_sync import build_scoring, local_artifact
from devtools.configs import ARTIFACT
from devtools.registry import default_variant, new_registry
from devtools.s3_server import S3Server
from router_models.inference.types import RouterSpec
from router_models.registry.sync import SyncState


@pytest.fixture(autouse=True)
def _blas_threads_restored() -> Iterator[None]:
    """A scorer caps this process's BLAS threads; later tests get the machine's default back."""
    with threadpool_limits(limits=None):
        yield


def test_a_scorer_replica_runs_one_blas_thread() -> None:
    RouterScoring([RouterSpec("auto", "learned", str(ARTIFACT))])
    blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert blas and all(lib["num_threads"] == 1 for lib in blas)


def test_a_file_url_is_a_plain_directory() -> None:
    spec = RouterSpec("auto", "learned", f"file://{ARTIFACT}")
    assert local_artifact(spec).artifact == str(ARTIFACT)


def test_the_replica_serves_the_pointer_and_swaps_when_it_moves(s3_server: S3Server, tmp_path: Path) -> None:
    registry = new_registry(s3_server)
    v1 = registry.publish(ARTIFACT)
    v2 = registry.publish(default_variant(tmp_path / "v2", 0.5))
    registry.promote("auto", v1.version)
    settings = ScorerSyncSettings(
        registry=RegistrySettings(endpoint_url=s3_server.url, poll_interval_s=0.2, cache_dir=str(tmp_path / "cache")),
        redis_url=None, redis_prefix="rqt", redis_timeout_s=1.0)
    rounds: list[list[SyncState]] = []
    specs = [RouterSpec("auto", "learned", str(registry.location)), RouterSpec("cheap", "cost-first")]
    service, loop = build_scoring(specs, settings, replica="r1", on_round=rounds.append)
    assert loop is not None
    try:
        assert service.describe()["auto"]["default_lambda"] == pytest.approx(v1.default_lambda)
        assert service.describe()["auto"]["artifact"] == str(tmp_path / "cache" / v1.sha256)
        assert rounds and rounds[0][0].version == "v1"  # the first state is reported at start
        registry.promote("auto", v2.version)
        deadline = time.monotonic() + 120
        while loop.states()[0].version != "v2":
            assert time.monotonic() < deadline, loop.states()
            time.sleep(0.1)
        state = loop.states()[0]
        assert (state.sha256, state.healthy) == (v2.sha256, True)
        assert service.describe()["auto"]["default_lambda"] == 0.5  # swapped before the state says so
    finally:
        loop.stop()


def test_a_registry_router_ignores_user_config_swaps(s3_server: S3Server, tmp_path: Path) -> None:
    """Its pointer says what it serves; a ``user_config`` artifact would go unnoticed by the sync."""
    registry = new_registry(s3_server)
    registry.promote("auto", registry.publish(ARTIFACT).version)
    settings = ScorerSyncSettings(
        registry=RegistrySettings(endpoint_url=s3_server.url, poll_interval_s=60, cache_dir=str(tmp_path / "cache")),
        redis_url=None, redis_prefix="rqt", redis_timeout_s=1.0)
    scorer = RouterScoring([RouterSpec("auto", "learned", str(registry.location))], sync=settings)
    try:
        before = scorer.describe()["routers"]["auto"]
        scorer.reconfigure({"artifacts": {"auto": str(default_variant(tmp_path / "other", 0.9))}})
        after = scorer.describe()["routers"]["auto"]
        assert after["artifact"] == before["artifact"] and after["default_lambda"] == before["default_lambda"]
        assert (after["version"], after["healthy"]) == ("v1", True)
    finally:
        assert scorer._sync is not None
        scorer._sync.stop()
