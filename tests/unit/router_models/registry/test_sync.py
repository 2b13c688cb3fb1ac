"""``RouterSync`` against a real S3-compatible server: a replica follows the pointer, never
serves a refused version, and rides out the store going away.

``load`` is ``load_artifact`` (the same verification a learned router's load does, without
torch), recording which default λ each load saw: the version a replica would serve.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devtools.s3_server import S3Server
from router_models.artifacts import load_artifact
from router_models.registry import RegistryError, parse_registry_url
from router_models.registry.cache import ArtifactCache
from router_models.registry.store import RouterRegistry
from router_models.registry.sync import RouterSync
from tests.registry_support import KEY, make_artifact


class Loader:
    """The replica's ``load``: verifies like the scorer does and records what is served."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key, self.served = key, []  # type: ignore[var-annotated]

    def __call__(self, path: str) -> None:
        self.served.append(load_artifact(path, signing_key=self.key).manifest["default_lambda"])


def follow(registry: RouterRegistry, cache: Path, loader: Callable[[str], None]) -> RouterSync:
    return RouterSync("auto", registry, ArtifactCache(cache), loader, node="test-node")


async def start(sync: RouterSync, loader: Loader) -> None:
    """What the scorer's constructor does: resolve, load, mark loaded."""
    loader(await sync.initial())
    sync.mark_loaded()


async def serving_v1_of_two(registry: RouterRegistry, tmp_path: Path) -> tuple[str, str, Loader, RouterSync]:
    """v1 (predicting 0.1) and v2 (0.3) published, v1 current and loaded by a following replica."""
    v1 = registry.publish(make_artifact(tmp_path / "a", 0.1)).version
    v2 = registry.publish(make_artifact(tmp_path / "b", 0.3)).version
    registry.promote("auto", v1)
    loader = Loader()
    sync = follow(registry, tmp_path / "cache", loader)
    await start(sync, loader)
    return v1, v2, loader, sync


async def test_a_promoted_version_is_loaded_and_swapped_in(registry: RouterRegistry, tmp_path: Path) -> None:
    v1, v2, loader, sync = await serving_v1_of_two(registry, tmp_path)
    assert not await sync.check()  # nothing new
    registry.promote("auto", v2)
    assert await sync.check()
    assert loader.served == [0.1, 0.3] and sync.state.version == v2 and sync.state.healthy
    registry.rollback("auto")
    assert await sync.check()
    assert loader.served[-1] == 0.1 and sync.state.version == v1
    assert sync.state.download == "cached"  # v1 was still in the node's cache


async def test_a_tampered_version_is_never_served_nor_downloaded_again(
        s3_server: S3Server, registry: RouterRegistry, tmp_path: Path) -> None:
    v1 = registry.publish(make_artifact(tmp_path / "a", 0.1)).version
    bad = registry.publish(make_artifact(tmp_path / "b", 0.3))
    s3_server.client().put_object(Bucket=registry.location.bucket,
                                  Key=registry.location.key("versions", bad.version, bad.sha256, "weights.safetensors"),
                                  Body=b"tampered")
    registry.promote("auto", v1)
    loader = Loader()
    sync = follow(registry, tmp_path / "cache", loader)
    await start(sync, loader)
    registry.promote("auto", bad.version)
    assert not await sync.check()
    assert loader.served == [0.1] and sync.state.version == v1  # still serving v1
    assert not sync.state.healthy and "sha256 does not match" in (sync.state.last_error or "")
    assert not await sync.check()
    assert "refused (retried later)" in (sync.state.last_error or "")
    assert not ArtifactCache(tmp_path / "cache").has(bad.sha256)


async def test_an_unsigned_version_is_refused_when_a_key_is_required(
        s3_server: S3Server, registry_url: str, tmp_path: Path) -> None:
    signed = RouterRegistry(s3_server.client(), parse_registry_url(registry_url), signing_key=KEY)
    unsigned = RouterRegistry(s3_server.client(), parse_registry_url(registry_url), signing_key=None)
    signed.promote("auto", signed.publish(make_artifact(tmp_path / "a", 0.1)).version)
    loader = Loader(KEY)
    sync = follow(signed, tmp_path / "cache", loader)
    await start(sync, loader)
    unsigned.promote("auto", unsigned.publish(make_artifact(tmp_path / "b", 0.3)).version)
    assert not await sync.check()
    assert loader.served == [0.1] and "is not signed" in (sync.state.last_error or "")


async def test_an_artifact_that_fails_to_load_is_not_served(registry: RouterRegistry, tmp_path: Path) -> None:
    registry.promote("auto", registry.publish(make_artifact(tmp_path / "a", 0.1)).version)
    loader = Loader(KEY)  # from v2 on, the replica requires signatures the registry did not add
    sync = follow(registry, tmp_path / "cache", loader)
    await start(sync, Loader())
    registry.promote("auto", registry.publish(make_artifact(tmp_path / "b", 0.3)).version)
    assert not await sync.check()
    assert loader.served == [] and sync.state.version == "v1"
    assert "manifest.sig is missing" in (sync.state.last_error or "")


@pytest.fixture
def own_s3() -> Iterator[S3Server]:
    """An S3 server this test may stop (the session's is shared)."""
    server = S3Server().start()
    yield server
    server.stop()


async def test_the_store_down_keeps_the_loaded_version_and_recovery_resumes(own_s3: S3Server, tmp_path: Path) -> None:
    registry = RouterRegistry(own_s3.client(), parse_registry_url(f"s3://{own_s3.new_bucket()}/r"))
    v1, v2, loader, sync = await serving_v1_of_two(registry, tmp_path)
    own_s3.stop()
    assert not await sync.check()
    assert sync.state.version == v1 and not sync.state.healthy
    assert "connect" in (sync.state.last_error or "").lower()
    own_s3.start()  # same port; moto kept the bucket
    registry.promote("auto", v2)
    assert await sync.check()
    assert sync.state.healthy and sync.state.version == v2 and loader.served == [0.1, 0.3]
    assert sync.state.last_error  # the outage stays recorded, with its time
    # A replica that starts while the store is down serves what this node cached last.
    own_s3.stop()
    cold = Loader()
    restarted = follow(registry, tmp_path / "cache", cold)
    await start(restarted, cold)
    assert cold.served == [0.3] and restarted.state.version == v2 and not restarted.state.healthy
    with pytest.raises(RegistryError, match="auto"):  # nothing cached on another node: refuse to start
        await follow(registry, tmp_path / "empty-cache", Loader()).initial()


def test_the_cache_drops_only_versions_no_router_of_the_node_needs(tmp_path: Path) -> None:
    import os
    import time

    cache = ArtifactCache(tmp_path / "cache")
    shas = {name: hexdigit * 64 for name, hexdigit in (("served", "a"), ("kept", "b"), ("old", "c"), ("young", "d"))}
    for sha in shas.values():
        (cache.root / sha).mkdir(parents=True)
    (cache.root / ".tmp-deadbeef-x").mkdir()  # a download whose replica died
    cache.remember("s3://b/p", "auto", "v3", shas["served"])
    hour_ago = time.time() - 3600
    for name in (shas["served"], shas["kept"], shas["old"], ".tmp-deadbeef-x"):
        os.utime(cache.root / name, (hour_ago, hour_ago))
    removed = cache.prune({shas["kept"]}, min_age_s=600)
    assert sorted(removed) == sorted([shas["old"], ".tmp-deadbeef-x"])
    assert {p.name for p in cache.root.iterdir()} == {shas["served"], shas["kept"], shas["young"], "pointers"}
