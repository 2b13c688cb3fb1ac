"""The watcher against a real S3 server (moto) and a real Redis: a new ETag is validated and
applied, an invalid version never is, S3 down is reported while the running config stays,
and a second replica converges through the Redis record without reading the source."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml

from app.config import GatewayConfig, parse_config
from app.config_sync import ConfigSync, SyncRecord, open_source
from app.config_sync.source import FileSource
from devtools.configs import CHEAP, gateway_config
from devtools.s3_server import S3Server
from devtools.services import RedisServer

NO_STORES = {"access": {"enabled": False}, "decisions": {"enabled": False}}


@pytest.fixture
def s3() -> Iterator[S3Server]:
    """A server of its own: tests stop and restart it."""
    server = S3Server().start()
    yield server
    server.stop()


def raw_config(s3_url: str, bucket: str, price: float = 0.1e-6) -> dict[str, Any]:
    raw = gateway_config("http://127.0.0.1:1/v1", **NO_STORES)
    raw["model_list"][0]["model_info"]["input_cost_per_token"] = price
    raw["general_settings"]["config_sync"] = {"source": f"s3://{bucket}/gw.yaml", "endpoint_url": s3_url,
                                              "timeout_s": 1, "poll_interval_s": 0.1}
    return raw


class Replica:
    """A watcher and the configs it applied (the gateway's ``reconfigure`` stands here)."""

    def __init__(self, cfg: GatewayConfig, record: SyncRecord | None = None, source: Any = None,
                 name: str = "r1") -> None:
        self.applied: list[GatewayConfig] = []
        sync = cfg.general_settings.config_sync
        self.audits: list[tuple[str, str | None, str]] = []

        async def audit(action: str, target: str | None, outcome: str, detail: dict[str, Any]) -> None:
            self.audits.append((action, target, outcome))

        self.sync = ConfigSync(cfg, source or open_source(str(sync.source), sync), self.applied.append,
                               replica=name, record=record, audit=audit)

    def price(self) -> float | None:
        cfg = self.applied[-1] if self.applied else self.sync.applied.cfg
        return cfg.model_list[0].model_info.input_cost_per_token


def put(s3: S3Server, bucket: str, raw: dict[str, Any]) -> None:
    s3.client().put_object(Bucket=bucket, Key="gw.yaml", Body=yaml.safe_dump(raw).encode())


async def test_a_new_etag_is_validated_and_applied_in_place(s3: S3Server) -> None:
    bucket = s3.new_bucket()
    first = raw_config(s3.url, bucket)
    put(s3, bucket, first)
    replica = Replica(parse_config(copy.deepcopy(first)))
    await replica.sync.check_once()  # same content as running: adopts the ETag, applies nothing
    assert replica.applied == [] and replica.sync.applied.version != "startup"
    assert replica.sync.last_error is None
    put(s3, bucket, raw_config(s3.url, bucket, price=0.3e-6))
    await replica.sync.check_once()
    assert replica.price() == 0.3e-6 and len(replica.applied) == 1
    status = await replica.sync.status()
    assert status["applied"]["version"] == s3.client().head_object(Bucket=bucket, Key="gw.yaml")["ETag"].strip('"')
    assert status["last_change"]["how"] == "in place"
    assert status["last_change"]["diff"] == [f"~ model {CHEAP}: model_info.input_cost_per_token 1e-07 -> 3e-07"]
    assert status["replicas"][0]["replica"] == "r1" and "no Redis" in status["replicas_note"]
    assert replica.audits[-1] == ("config.apply", status["applied"]["version"], "success")
    await replica.sync.check_once()  # unchanged ETag: nothing fetched, nothing applied
    assert len(replica.applied) == 1


async def test_an_invalid_version_is_never_applied_and_stays_reported(s3: S3Server) -> None:
    bucket = s3.new_bucket()
    good = raw_config(s3.url, bucket)
    put(s3, bucket, good)
    replica = Replica(parse_config(copy.deepcopy(good)))
    bad = copy.deepcopy(good)
    bad["general_settings"]["bogus_key"] = True
    bad["model_list"][0]["litellm_params"]["api_key"] = "os.environ/ROUTEIQ_SYNC_TEST_MISSING"
    bad["model_list"][0]["model_info"]["input_cost_per_token"] = 9e-6
    put(s3, bucket, bad)
    for _ in range(2):  # reported on every round while the source holds it, audited once
        await replica.sync.check_once()
        assert replica.applied == [] and replica.price() == 0.1e-6
        error = replica.sync.last_error
        assert error is not None and error.kind == "invalid"
        assert "general_settings.bogus_key: Extra inputs are not permitted" in error.message
        assert "ROUTEIQ_SYNC_TEST_MISSING is not set" in error.message
    assert [a for a in replica.audits if a[0] == "config.reject"] == [("config.reject", error.version, "invalid")]
    assert replica.sync.health() == {"status": "degraded", "error": "invalid", "since": error.at}
    put(s3, bucket, raw_config(s3.url, bucket, price=0.2e-6))  # fixed: applied, the error clears
    await replica.sync.check_once()
    assert replica.price() == 0.2e-6 and replica.sync.last_error is None and replica.sync.health() is None


async def test_s3_down_is_reported_the_config_stays_and_sync_recovers(s3: S3Server) -> None:
    bucket = s3.new_bucket()
    good = raw_config(s3.url, bucket)
    put(s3, bucket, good)
    replica = Replica(parse_config(copy.deepcopy(good)))
    await replica.sync.check_once()
    s3.stop()
    try:
        await replica.sync.check_once()
        error = replica.sync.last_error
        assert error is not None and error.kind == "source" and f"s3://{bucket}/gw.yaml" in error.message
        assert replica.applied == [] and replica.sync.applied.cfg.model_list[0].model_info.input_cost_per_token \
            == 0.1e-6
        assert (await replica.sync.status())["last_error"]["kind"] == "source"
    finally:
        s3.start()  # same port; moto kept the bucket
    put(s3, bucket, raw_config(s3.url, bucket, price=0.4e-6))
    await replica.sync.check_once()
    assert replica.sync.last_error is None and replica.price() == 0.4e-6


async def test_replicas_converge_through_the_redis_record(s3: S3Server, redis_server: RedisServer,
                                                          tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    good = raw_config(s3.url, bucket)
    put(s3, bucket, good)
    redis = aioredis.from_url(redis_server.url(), socket_timeout=2)
    prefix = f"sync-{secrets.token_hex(4)}"
    try:
        a = Replica(parse_config(copy.deepcopy(good)), SyncRecord(redis, prefix, 60), name="a")
        # b never sees the new version in its own source (a file that does not change): only the record
        (tmp_path / "gw.yaml").write_text(yaml.safe_dump(good))
        b = Replica(parse_config(copy.deepcopy(good)), SyncRecord(redis, prefix, 60),
                    FileSource(str(tmp_path / "gw.yaml")), name="b")
        await a.sync.check_once()
        await b.sync.check_once()
        put(s3, bucket, raw_config(s3.url, bucket, price=0.5e-6))
        await a.sync.check_once()
        assert a.price() == 0.5e-6 and b.price() == 0.1e-6
        await b.sync.check_once()
        assert b.price() == 0.5e-6
        assert a.sync.applied.hash == b.sync.applied.hash and a.sync.applied.seq == b.sync.applied.seq == 2
        status = await b.sync.status()
        assert {(r["replica"], r["hash"]) for r in status["replicas"]} == {("a", a.sync.applied.hash),
                                                                             ("b", a.sync.applied.hash)}
        assert status["record"]["seq"] == 2 and status["record"]["published_by"] == "a"
        assert status["record"]["diff"] == [f"~ model {CHEAP}: model_info.input_cost_per_token 1e-07 -> 5e-07"]
        assert [x[0] for x in a.audits] == ["config.apply"] and b.audits == []  # one audit row per version
    finally:
        await redis.aclose()


async def test_a_graph_change_goes_to_the_updater_and_stays_pending(s3: S3Server) -> None:
    bucket = s3.new_bucket()
    good = raw_config(s3.url, bucket)
    put(s3, bucket, good)
    grown = copy.deepcopy(good)
    grown["provider_groups"].append({"name": "extra"})
    grown["model_list"][0]["provider_group"] = "extra"
    updates: list[str] = []

    class RecordingUpdater:  # stands in for Serve (deployments/config_update.py; integration-tested)
        async def update(self, cfg: GatewayConfig, version: str, config_hash: str) -> str:
            updates.append(config_hash)
            return "submitted"

    replica = Replica(parse_config(copy.deepcopy(good)))
    replica.sync._updater = RecordingUpdater()
    put(s3, bucket, grown)
    await replica.sync.check_once()
    await replica.sync.check_once()
    assert replica.applied == [] and len(updates) == 1  # never applied in place; one update asked
    pending = (await replica.sync.status())["pending_update"]
    assert pending["reasons"] == ["new provider group 'extra'"] and pending["update"] == "submitted"
    without = Replica(parse_config(copy.deepcopy(good)))  # no updater (plain FastAPI): reported, not applied
    for _ in range(2):  # reported on every round while the source holds it
        await without.sync.check_once()
        assert without.applied == [] and without.sync.last_error is not None
        assert without.sync.last_error.kind == "update" and "changes the graph" in without.sync.last_error.message


async def test_a_mounted_file_is_watched_by_mtime_and_content(tmp_path: Path) -> None:
    raw = gateway_config("http://127.0.0.1:1/v1", **NO_STORES)
    path = tmp_path / "gw.yaml"
    raw["general_settings"]["config_sync"] = {"source": str(path)}
    path.write_text(yaml.safe_dump(raw))
    replica = Replica(parse_config(copy.deepcopy(raw)))
    await replica.sync.check_once()
    assert replica.sync.applied.version.startswith("sha256:") and replica.applied == []
    raw["model_list"][0]["model_info"]["input_cost_per_token"] = 0.6e-6
    path.write_text(yaml.safe_dump(raw))
    await replica.sync.check_once()
    assert replica.price() == 0.6e-6
    path.unlink()
    await replica.sync.check_once()
    assert replica.sync.last_error is not None and replica.sync.last_error.kind == "source"
    assert replica.price() == 0.6e-6


async def test_redis_down_pauses_the_sync_and_it_resumes(s3: S3Server) -> None:
    server = RedisServer().start()  # its own: the test stops it
    redis = aioredis.from_url(server.url(), socket_timeout=1, socket_connect_timeout=1)
    try:
        bucket = s3.new_bucket()
        good = raw_config(s3.url, bucket)
        put(s3, bucket, good)
        replica = Replica(parse_config(copy.deepcopy(good)), SyncRecord(redis, "down", 60))
        await replica.sync.check_once()
        server.stop()
        put(s3, bucket, raw_config(s3.url, bucket, price=0.7e-6))
        await replica.sync.check_once()
        assert replica.sync.last_error is not None and replica.sync.last_error.kind == "redis"
        assert replica.applied == []  # replicas cannot agree without the record: nothing changes
        server.start()  # same port, no persistence: the record starts again
        await replica.sync.check_once()
        assert replica.sync.last_error is None and replica.price() == 0.7e-6
        assert (await replica.sync.status())["record"]["hash"] == replica.sync.applied.hash
    finally:
        await redis.aclose()
        server.stop()
