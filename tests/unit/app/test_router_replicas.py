"""The registry sync's Redis parts against real servers: one downloader per node, no lock
(but a verified download) when Redis is down, a crashed lock holder's lease expiring,
and replica states expiring."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from app.router_replicas import RedisDownloadLock, ReplicaStates
from devtools.ports import free_port
from devtools.s3_server import S3Server
from devtools.services import RedisServer
from router_models.artifacts import load_artifact
from router_models.registry.cache import ArtifactCache
from router_models.registry.store import RouterRegistry, VersionInfo
from router_models.registry.sync import RouterSync
from tests.registry_support import make_artifact, new_registry

ROOT = Path(__file__).resolve().parents[3]


class CountingRegistry(RouterRegistry):
    """Counts downloads (the real ones: ``fetch`` still talks to the S3 server)."""

    fetches = 0

    def fetch(self, info: VersionInfo, dest: Path) -> None:
        self.fetches += 1
        time.sleep(0.3)  # a download that takes a while, so the other replica has to wait for it
        super().fetch(info, dest)


@pytest.fixture
def registry(s3_server: S3Server) -> RouterRegistry:
    return new_registry(s3_server)


def _counting(registry: RouterRegistry) -> CountingRegistry:
    return CountingRegistry(registry._s3, registry.location)


def _sync(registry: RouterRegistry, cache: Path, lock: RedisDownloadLock | None, served: list[float]) -> RouterSync:
    def load(path: str) -> None:
        served.append(load_artifact(path).manifest["default_lambda"])

    return RouterSync("auto", registry, ArtifactCache(cache), load, lock, node="node-a")


def _client(url: str) -> aioredis.Redis:
    return aioredis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


async def test_replicas_of_one_node_download_a_version_once(registry: RouterRegistry, redis_server: RedisServer,
                                                            tmp_path: Path) -> None:
    registry.promote("auto", registry.publish(make_artifact(tmp_path / "a", 0.1)).version)
    counting, prefix = _counting(registry), f"rqt-{secrets.token_hex(4)}"
    clients = [_client(redis_server.url()) for _ in range(2)]
    served: list[float] = []
    syncs = [_sync(counting, tmp_path / "cache", RedisDownloadLock(c, prefix, lease_s=30), served) for c in clients]
    paths = await asyncio.gather(*(s.initial() for s in syncs))
    assert paths[0] == paths[1] and counting.fetches == 1
    assert sorted(s.state.download for s in syncs) == ["locked", "locked"]
    for c in clients:
        await c.aclose()


async def test_with_redis_down_a_replica_downloads_without_the_lock(registry: RouterRegistry, tmp_path: Path) -> None:
    registry.promote("auto", registry.publish(make_artifact(tmp_path / "a", 0.1)).version)
    down = _client(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    served: list[float] = []
    sync = _sync(registry, tmp_path / "cache", RedisDownloadLock(down, "rqt", lease_s=30), served)
    sync._load(await sync.initial())
    registry.promote("auto", registry.publish(make_artifact(tmp_path / "b", 0.3)).version)
    assert await sync.check()
    assert served == [0.1, 0.3] and sync.state.healthy
    assert sync.state.download.startswith("unlocked: redis unavailable")
    await down.aclose()


async def test_a_crashed_lock_holder_blocks_the_others_only_until_its_lease_ends(
        registry: RouterRegistry, redis_server: RedisServer, tmp_path: Path) -> None:
    info = registry.publish(make_artifact(tmp_path / "a", 0.1))
    registry.promote("auto", info.version)
    prefix = f"rqt-{secrets.token_hex(4)}"
    crashed = _client(redis_server.url())
    # A replica took the lock for this download and died holding it (never released).
    assert await crashed.lock(f"{prefix}:router-download:node-a:{info.sha256}", timeout=2).acquire()
    waiter = _client(redis_server.url())
    served: list[float] = []
    sync = _sync(registry, tmp_path / "cache", RedisDownloadLock(waiter, prefix, lease_s=2), served)
    started = time.monotonic()
    sync._load(await asyncio.wait_for(sync.initial(), timeout=30))
    assert time.monotonic() - started >= 1.0  # it did wait for the lease
    assert served == [0.1] and sync.state.download == "locked"
    for c in (crashed, waiter):
        await c.aclose()


async def test_replica_states_are_listed_until_they_go_stale(redis_server: RedisServer) -> None:
    client = _client(redis_server.url())
    states = ReplicaStates(client, f"rqt-{secrets.token_hex(4)}", ttl_s=1.0)
    await states.report("r1", {"auto": {"version": "v1"}})
    await states.report("r2", {"auto": {"version": "v2"}})
    assert [(s["replica"], s["routers"]["auto"]["version"]) for s in await states.read()] == [("r1", "v1"),
                                                                                              ("r2", "v2")]
    deadline = time.monotonic() + 10
    while await states.read() and time.monotonic() < deadline:
        await states.report("r2", {"auto": {"version": "v2"}})
        await asyncio.sleep(0.2)
        if [s["replica"] for s in await states.read()] == ["r2"]:
            break
    assert [s["replica"] for s in await states.read()] == ["r2"]  # r1 stopped reporting
    assert await client.hlen(states._key) == 1  # and its field was removed
    await client.aclose()


HOLDER = """
import asyncio, sys, time
import redis.asyncio as aioredis
from app.router_replicas import RedisDownloadLock
from router_models.registry import parse_registry_url
from router_models.registry.cache import ArtifactCache
from router_models.registry.s3 import build_s3_client
from router_models.registry.store import RouterRegistry
from router_models.registry.sync import RouterSync

class Stalled(RouterRegistry):
    def fetch(self, info, dest):
        (dest / "manifest.json").write_bytes(b'{"partial')  # half a download, then it hangs
        print("DOWNLOADING", flush=True)
        time.sleep(120)

endpoint, url, redis_url, prefix, cache = sys.argv[1:6]
registry = Stalled(build_s3_client(endpoint, "us-east-1"), parse_registry_url(url))
lock = RedisDownloadLock(aioredis.from_url(redis_url), prefix, lease_s=3)
asyncio.run(RouterSync("auto", registry, ArtifactCache(cache), print, lock, node="node-a").initial())
"""


async def test_a_lock_holder_killed_mid_download_leaves_no_half_artifact_and_its_lease_ends(
        s3_server: S3Server, registry: RouterRegistry, redis_server: RedisServer, tmp_path: Path) -> None:
    registry.promote("auto", registry.publish(make_artifact(tmp_path / "a", 0.1)).version)
    prefix, cache = f"rqt-{secrets.token_hex(4)}", tmp_path / "cache"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, s3_server.url, str(registry.location), redis_server.url(),
                               prefix, str(cache)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "DOWNLOADING"
    finally:
        holder.kill()  # SIGKILL: the lock is never released, the temporary directory stays
        holder.wait(timeout=30)
    waiter = _client(redis_server.url())
    served: list[float] = []
    sync = _sync(registry, cache, RedisDownloadLock(waiter, prefix, lease_s=30), served)
    sync._load(await asyncio.wait_for(sync.initial(), timeout=60))
    assert served == [0.1] and sync.state.download == "locked"  # it got the lock once the lease ended
    complete = [p.name for p in cache.iterdir() if not p.name.startswith(".") and p.name != "pointers"]
    assert complete == [sync.state.sha256]  # the half download was never taken for the artifact
    await waiter.aclose()
