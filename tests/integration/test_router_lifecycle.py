"""Router lifecycle through the graph: two scorer replicas follow an S3 registry pointer
(moto's server, real Redis) under continuous ``auto`` traffic.

A promote reaches both replicas (each reports its version to Redis: ``/router/info``),
answers switch to the new version's default λ (the visible difference between the two
versions), and not one request fails or falls back (``x-routeiq-strategy``) because of the
swap; a rollback converges back the same way.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.configs import ARTIFACT, MASTER_KEY, learned_gateway_config
from devtools.registry import default_variant, new_registry
from devtools.s3_server import S3Server
from devtools.services import RedisServer
from router_models.registry.store import RouterRegistry
from tests.integration.conftest import METRICS_PORT

APP = "lifecycle"
CONVERGE_S = 90.0
"""Promote → both replicas serving: two polls (1 s) and a load of the learned router on a busy machine."""
TWO = {"min_replicas": 2, "max_replicas": 2, "upscale_delay_s": 1, "downscale_delay_s": 600}
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


@dataclass
class Traffic:
    """``auto`` requests sent by a few clients until stopped; what each answer said."""

    statuses: Counter[str] = field(default_factory=Counter)
    strategies: Counter[str] = field(default_factory=Counter)
    lambdas: list[tuple[float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, url: str) -> None:
        with httpx.Client(timeout=60) as http:
            while not self.stop.is_set():
                body = {"model": "auto", "max_tokens": 4,
                        "messages": [{"role": "user", "content": f"explain {uuid.uuid4().hex} briefly"}]}
                try:
                    r = http.post(f"{url}/chat/completions", json=body, headers=AUTH)
                except httpx.TransportError as err:
                    with self.lock:
                        self.statuses[type(err).__name__] += 1
                    continue
                with self.lock:
                    self.statuses[str(r.status_code)] += 1
                    if r.status_code == 200:
                        self.strategies[r.headers.get("x-routeiq-strategy", "").split(":")[0]] += 1
                        self.lambdas.append((time.monotonic(), r.headers.get("x-routeiq-lambda", "")))
                time.sleep(0.05)


@pytest.fixture(scope="module")
def lifecycle(deploy_gateway: Callable[..., str], upstream: Any, s3_server: S3Server, redis_server: RedisServer,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RouterRegistry, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("lifecycle")
    registry = new_registry(s3_server)
    v1 = registry.publish(ARTIFACT)
    v2 = registry.publish(default_variant(Path(tmp) / "v2", 0.5))
    registry.promote("auto", v1.version)
    cfg = learned_gateway_config(upstream.url)
    auto = {**cfg["router_settings"]["routers"][0], "artifact": str(registry.location)}
    cfg["router_settings"] = {"routers": [auto], "registry": {
        "endpoint_url": s3_server.url, "poll_interval_s": 1.0, "cache_dir": str(Path(tmp) / "cache")}}
    cfg["general_settings"].update(redis_url=redis_server.url(), access={"enabled": False,
                                                                         "redis_prefix": f"rqt-{uuid.uuid4().hex[:8]}"})
    small = {"ray_actor_options": {"num_cpus": 0.05}}
    url = deploy_gateway(cfg, name=APP, route_prefix=f"/{APP}",
                         overrides={"RouterScoring": {**small, "autoscaling_config": TWO}, "Ingress": small})
    yield url, registry, {"v1": v1, "v2": v2}
    from ray import serve

    serve.delete(APP)


def router_info(url: str) -> dict[str, Any]:
    r = httpx.get(url.removesuffix("/v1") + "/router/info", headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    info: dict[str, Any] = r.json()["routers"]["auto"]
    return info


def wait_until_both_serve(url: str, version: str) -> float:
    """Seconds until two replicas report ``version`` as loaded and healthy."""
    started = time.monotonic()
    while True:
        replicas = router_info(url)["replicas"]
        if len(replicas) == 2 and all(r["version"] == version and r["healthy"] for r in replicas):
            return time.monotonic() - started
        assert time.monotonic() - started < CONVERGE_S, replicas
        time.sleep(0.5)


def swap_under_traffic(url: str, move: Callable[[], None], version: str, lam: str) -> tuple[Traffic, float]:
    """Traffic before, during and after ``move``; returns it and the time to converge."""
    traffic = Traffic()
    with ThreadPoolExecutor(4) as pool:
        clients = [pool.submit(traffic.client, url) for _ in range(4)]
        time.sleep(2)
        move()
        converged = wait_until_both_serve(url, version)
        at = time.monotonic()
        deadline = at + 30
        while not [lam_ for t, lam_ in traffic.lambdas if t > at + 1 and lam_ == lam][:10]:
            assert time.monotonic() < deadline, traffic.lambdas[-10:]
            time.sleep(0.2)
        time.sleep(2)
        traffic.stop.set()
        for c in clients:
            c.result()
    return traffic, converged


def test_replicas_converge_on_a_promoted_version_and_back_without_a_failure_or_fallback(
        lifecycle: tuple[str, RouterRegistry, dict[str, Any]]) -> None:
    url, registry, versions = lifecycle
    v1_lam = f"{versions['v1'].default_lambda:g}"
    wait_until_both_serve(url, "v1")
    info = router_info(url)
    assert (info["version"], info["sha256"], info["default_lambda"]) == ("v1", versions["v1"].sha256,
                                                                         versions["v1"].default_lambda)
    assert info["last_sync_error"] is None and len(info["artifact_models"]) == 9

    traffic, seconds = swap_under_traffic(url, lambda: registry.promote("auto", "v2"), "v2", "0.5")
    assert set(traffic.statuses) == {"200"} and traffic.statuses["200"] > 40, traffic.statuses
    assert set(traffic.strategies) == {"learned"}, traffic.strategies  # no fallback, ever
    assert {lam for _, lam in traffic.lambdas} == {v1_lam, "0.5"}
    after = [lam for t, lam in traffic.lambdas if t > traffic.lambdas[-1][0] - 1]
    assert set(after) == {"0.5"}  # once converged, only v2 answers
    assert seconds < CONVERGE_S
    print(f"promote -> both replicas on v2: {seconds:.1f} s; answers {dict(traffic.statuses)}")
    ready = httpx.get(url.removesuffix("/v1") + "/health/readiness", timeout=30).json()
    assert ready["router_sync"]["auto"] == {"versions": ["v2"], "replicas": 2, "sync_failing": 0}, ready

    traffic, seconds = swap_under_traffic(url, lambda: registry.rollback("auto"), "v1", v1_lam)
    print(f"rollback -> both replicas on v1: {seconds:.1f} s; answers {dict(traffic.statuses)}")
    assert set(traffic.statuses) == {"200"}, traffic.statuses
    assert set(traffic.strategies) == {"learned"}, traffic.strategies
    assert router_info(url)["version"] == "v1"


def test_the_version_gauge_says_which_version_each_replica_serves(
        lifecycle: tuple[str, RouterRegistry, dict[str, Any]]) -> None:
    """After the promote and rollback above: per replica, v1 at 1 and v2 at 0."""
    url, _, _ = lifecycle
    wait_until_both_serve(url, "v1")
    deadline = time.monotonic() + 90  # Ray's metrics agent exports on its own period
    while True:
        text = httpx.get(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5).text
        series = [line for line in text.splitlines()
                  if line.startswith("ray_routeiq_router_version_info{") and f'application="{APP}"' in line]
        current = [s for s in series if 'version="v1"' in s and s.endswith(" 1.0")]
        moved_away = [s for s in series if 'version="v2"' in s and s.endswith(" 0.0")]
        if len(current) == 2 and len(moved_away) == 2:
            break
        assert time.monotonic() < deadline, series
        time.sleep(1)
