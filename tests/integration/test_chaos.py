"""Chaos through the graph: replicas killed (SIGKILL) under concurrent plain, streamed and
``auto`` traffic. Bounded in time and load.

A killed provider or scorer replica is never a 500: a call it held is retried on a live
replica (or follows its fallback chain), a stream it was feeding ends with a well-formed
error event and ``[DONE]``, and every answered request is charged exactly once. Serve
replaces the replica; the deployment serves again within a stated bound.
"""

from __future__ import annotations

import os
import signal
import subprocess
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
import orjson
import pytest

from devtools.configs import MASTER_KEY, MID, PRICEY, gateway_config
from devtools.services import PostgresServer, RedisServer
from tests.access_support import access_general

APP = "chaos"
RECOVERY_S = 60.0
"""How long a deployment may take to serve again after losing a replica (a loaded machine)."""
THINK_S = 0.1
"""Pause between a client's requests: the load stays under /spend/logs' 1,000 rows a read."""
TWO = {"min_replicas": 2, "max_replicas": 2, "upscale_delay_s": 1, "downscale_delay_s": 600}


@dataclass
class Outcomes:
    statuses: Counter[str] = field(default_factory=Counter)
    answered: list[str] = field(default_factory=list)
    """Request ids of answers the client got (JSON 200s and streams that started)."""
    bad_streams: list[str] = field(default_factory=list)
    strategies: Counter[str] = field(default_factory=Counter)
    """``x-routeiq-strategy`` of the answers to ``auto`` (``fallback``: the router did not decide)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, status: int | str, rid: str | None = None, strategy: str | None = None) -> None:
        with self.lock:
            self.statuses[f"{kind}:{status}"] += 1
            if rid:
                self.answered.append(rid)
            if strategy is not None:
                self.strategies[strategy] += 1


@pytest.fixture(scope="module")
def chaos(deploy_gateway: Callable[..., str], upstream: Any, postgres_server: PostgresServer,
          redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Any]]:
    db = postgres_server.create_database()
    general = access_general("real", str(tmp_path_factory.mktemp("chaos")), database_url=postgres_server.url(db),
                             redis_url=redis_server.url())
    cfg = gateway_config(upstream.url, request_timeout_s=20, **general)
    small = {"ray_actor_options": {"num_cpus": 0.05}}
    overrides = {"Ingress": {**small, "num_replicas": 2}, "Provider-small": {**small, "autoscaling_config": TWO},
                 "RouterScoring": {**small, "autoscaling_config": TWO}, "Provider-large": small,
                 "Provider-slow": small}
    url = deploy_gateway(cfg, name=APP, route_prefix=f"/{APP}", overrides=overrides)
    http = httpx.Client(timeout=60)
    created = http.post(url.removesuffix("/v1") + "/key/generate", json={},
                        headers={"authorization": f"Bearer {MASTER_KEY}"}).json()
    yield url, created["key"], created["key_id"]
    http.close()
    postgres_server.drop_database(db)


def replica_pids(deployment: str) -> list[int]:
    """PIDs of this app's live replicas of ``deployment`` (Ray names its worker processes).

    Only processes of this session's Ray (descendants of this pytest process, which started
    it): another Ray on the machine may run an app of the same name, and its replicas are
    not this test's to kill.
    """
    out = subprocess.run(["pgrep", "-f", f"ServeReplica:{APP}:{deployment}"], capture_output=True, text=True,
                         check=False)
    return [int(p) for p in out.stdout.split() if _descends_from(int(p), os.getpid())]


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rpartition(")")[2].split()[1])  # the field after the state: the parent's pid
    return False


def traffic(url: str, key: str, seconds: float, out: Outcomes, model: str = MID) -> None:
    """6 plain clients on ``model``, 2 on auto, 4 streaming 40-token streams, for ``seconds``
    (the load of the issue's kill experiment)."""
    auth = {"authorization": f"Bearer {key}"}
    end = time.monotonic() + seconds

    def plain(model: str) -> None:
        with httpx.Client(timeout=60) as c:
            while time.monotonic() < end:
                body = {"model": model, "messages": [{"role": "user", "content": f"chaos {uuid.uuid4().hex}"}]}
                try:
                    r = c.post(f"{url}/chat/completions", json=body, headers=auth)
                except httpx.TransportError as err:
                    out.add(model, type(err).__name__)
                    continue
                out.add(model, r.status_code, r.headers.get("x-request-id") if r.status_code == 200 else None,
                        r.headers.get("x-routeiq-strategy", "") if model == "auto" and r.status_code == 200 else None)
                time.sleep(THINK_S)

    def streamed() -> None:
        with httpx.Client(timeout=60) as c:
            while time.monotonic() < end:
                body = {"model": model, "stream": True, "messages": [
                    {"role": "user", "content": f"s {uuid.uuid4().hex} [[fake tokens=40 itl_ms=20]]"}]}
                try:
                    with c.stream("POST", f"{url}/chat/completions", json=body, headers=auth) as r:
                        raw = r.read().decode()
                except httpx.TransportError as err:
                    out.add("stream", type(err).__name__)
                    continue
                out.add("stream", r.status_code, r.headers.get("x-request-id") if r.status_code == 200 else None)
                if r.status_code == 200 and not _well_formed(raw):
                    out.bad_streams.append(raw[-300:])

    with ThreadPoolExecutor(12) as pool:
        jobs = [pool.submit(plain, model) for _ in range(6)] + [pool.submit(plain, "auto") for _ in range(2)]
        jobs += [pool.submit(streamed) for _ in range(4)]
        for job in jobs:
            job.result()


def _well_formed(raw: str) -> bool:
    """Every event is JSON, the last is ``[DONE]``; an error event is OpenAI-shaped."""
    events = [e.removeprefix("data: ") for e in raw.strip().split("\n\n") if e]
    if not events or events[-1] != "[DONE]":
        return False
    for e in events[:-1]:
        obj = orjson.loads(e)
        if "error" in obj and (not {"message", "type", "code"} <= set(obj["error"])
                               or obj["error"]["type"] == "internal_error"):  # a lost replica is not ours
            return False
    return True


def serves_again(url: str, key: str, model: str) -> float:
    """Seconds until ``model`` answers 200 five times in a row."""
    started, ok = time.monotonic(), 0
    while ok < 5:
        assert time.monotonic() - started < RECOVERY_S, f"{model} did not serve again"
        r = httpx.post(f"{url}/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "x"}]},
                       headers={"authorization": f"Bearer {key}"}, timeout=60)
        ok = ok + 1 if r.status_code == 200 else 0
    return time.monotonic() - started


def spend_request_ids(url: str, key_id: str, expected: set[str]) -> list[str]:
    """Every spend row's request id, once ``expected`` are all written (generous deadline: the
    buffers flush every 0.2 s, longer while the database is slow)."""
    admin = httpx.Client(base_url=url.removesuffix("/v1"), headers={"authorization": f"Bearer {MASTER_KEY}"},
                         timeout=60)
    deadline = time.monotonic() + 60
    while True:
        r = admin.get("/spend/logs", params={"key_id": key_id, "size": 1000})
        ids = [row["request_id"] for row in r.json()["data"]] if r.status_code == 200 else []
        if expected <= set(ids) or time.monotonic() > deadline:
            return ids
        time.sleep(0.5)


@pytest.mark.parametrize(("deployment", "replicas", "model"), [
    ("Provider-small", 2, MID), ("Provider-large", 1, PRICEY), ("RouterScoring", 2, MID)])
def test_a_killed_replica_is_never_a_500(chaos: tuple[str, str, Any], deployment: str, replicas: int,
                                         model: str) -> None:
    url, key, key_id = chaos
    assert len(replica_pids(deployment)) == replicas
    out = Outcomes()
    load = threading.Thread(target=traffic, args=(url, key, 12.0, out, model))
    load.start()
    time.sleep(3)
    os.kill(replica_pids(deployment)[0], signal.SIGKILL)
    load.join()
    statuses = {s.split(":")[1] for s in out.statuses}
    assert statuses <= {"200", "503"}, out.statuses  # 503 + Retry-After only when nothing could serve
    assert not out.bad_streams, out.bad_streams[:3]
    assert out.statuses.total() > 50, out.statuses  # traffic flowed throughout
    if deployment == "RouterScoring":
        # One of two scorer replicas died: the other keeps deciding. Not every query: requests in flight on
        # the dead one, and decisions past the router deadline on a loaded machine, fall back (6 of 16 seen
        # with a second test run on the cores; 0 in three quiet runs). The fallbacks answer, as asserted above.
        assert out.strategies and out.strategies.total() > out.strategies["fallback"], out.strategies
    serves_again(url, key, model)
    counted = Counter(spend_request_ids(url, key_id, set(out.answered)))
    assert not [r for r, n in counted.items() if n > 1]  # nothing counted twice
    assert set(out.answered) <= set(counted)  # nothing answered went uncharged


def test_a_killed_ingress_replica_loses_only_its_requests_in_flight(chaos: tuple[str, str, Any]) -> None:
    """Two ingress replicas: the proxy stops sending to the dead one; at most the requests it
    held in flight fail (one per client at most), and later requests are answered."""
    url, key, _ = chaos
    assert len(replica_pids("Ingress")) == 2
    out = Outcomes()
    load = threading.Thread(target=traffic, args=(url, key, 12.0, out))
    load.start()
    time.sleep(3)
    os.kill(replica_pids("Ingress")[0], signal.SIGKILL)
    load.join()
    failed = {s: n for s, n in out.statuses.items() if not s.endswith(":200")}
    assert sum(failed.values()) <= 12, out.statuses  # 12 clients: at most one request in flight each
    assert not out.bad_streams, out.bad_streams[:3]
    serves_again(url, key, MID)
