"""Config sync on a running app with two ingress replicas, real S3 (moto), Redis and Postgres.

One Serve app for the module (``/sync``): its config lives in an S3 object the replicas
watch. A price change lands on both replicas under traffic with no failed request, and
each replica then charges the new price; an invalid version (unknown key, missing secret,
unknown artifact) is never applied and is reported; S3 down is reported while traffic is
unaffected, and the sync recovers.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
import yaml

from devtools.configs import MASTER_KEY, MID
from devtools.s3_server import S3Server
from tests.access_support import access_general
from tests.integration.gateway_app import SMALL, App, two_model_config, with_patient_routers
from tests.integration.streams import Streams, direct_ingress_ports

PREFIX = "/sync"
KEY = "gw.yaml"
ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


def eventually(check: Callable[[], bool], timeout: float = 90.0, what: str = "condition") -> None:
    """Poll ``check`` until true; the deadline is generous (a loaded 2-core machine is slow)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not met in time"
        time.sleep(0.2)


class Synced:
    """The deployed app, its S3 object and what the test changes in it."""

    def __init__(self, app: App, s3: S3Server, bucket: str, config: dict[str, Any]) -> None:
        self.app, self.s3, self.bucket, self.config = app, s3, bucket, config

    def upload(self, config: dict[str, Any]) -> str:
        """Put a version; its ETag."""
        reply = self.s3.client().put_object(Bucket=self.bucket, Key=KEY, Body=yaml.safe_dump(config).encode())
        return str(reply["ETag"]).strip('"')

    def with_price(self, price: float) -> dict[str, Any]:
        config = copy.deepcopy(self.config)
        for entry in config["model_list"]:
            if entry["model_name"] == MID:
                entry["model_info"] |= {"input_cost_per_token": price, "output_cost_per_token": price}
        return config

    def status(self, base: str | None = None) -> dict[str, Any]:
        resp = httpx.get(f"{base or self.app.base}/config/sync/status", headers=ADMIN, timeout=10)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def replicas_on(self, version: str) -> bool:
        """Both ingress replicas report ``version`` applied, under one sequence number (and no error)."""
        replicas = self.status()["replicas"]
        return (len(replicas) == 2 and all(r["version"] == version and r["error"] is None for r in replicas)
                and len({r["seq"] for r in replicas}) == 1)


@pytest.fixture(scope="module")
def synced(deploy_gateway: Any, upstream: Any, redis_server: Any, postgres_server: Any,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    s3 = S3Server().start()  # the module's own: a test takes it down
    bucket = s3.new_bucket()
    db = postgres_server.create_database()
    general = access_general("real", str(tmp_path_factory.mktemp("sync")), database_url=postgres_server.url(db),
                             redis_url=redis_server.url())
    general["config_sync"] = {"source": f"s3://{bucket}/{KEY}", "endpoint_url": s3.url, "region": "us-east-1",
                              "poll_interval_s": 0.5, "timeout_s": 1, "state_ttl_s": 5}
    config = with_patient_routers(two_model_config(upstream.url, general, "sync"))  # the file is what is deployed
    synced = Synced(App("", ""), s3, bucket, config)
    synced.upload(config)
    overrides = {"Ingress": {**SMALL, "num_replicas": 2}, "Provider-sync": SMALL, "RouterScoring": SMALL}
    url = deploy_gateway(config, name="sync", route_prefix=PREFIX, overrides=overrides)
    synced.app = App(url, postgres_server.url(db))
    eventually(lambda: synced.replicas_on(s3.client().head_object(Bucket=bucket, Key=KEY)["ETag"].strip('"')),
               what="both replicas on the first version")
    yield synced
    from ray import serve

    serve.delete("sync")
    s3.stop()
    postgres_server.drop_database(db)


class Traffic:
    """Requests in a loop from two threads until stopped; every outcome is kept."""

    def __init__(self, base: str) -> None:
        self._client = openai.OpenAI(base_url=f"{base}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30)
        self._stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                reply = self._client.chat.completions.create(model=MID,
                                                             messages=[{"role": "user", "content": "traffic"}])
                assert reply.choices[0].message.content
                self.ok += 1
            except Exception as err:  # noqa: BLE001  (any failure is what the test counts)
                self.failures.append(f"{type(err).__name__}: {err}")

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)


def charged_per_token(app: App, base: str) -> float:
    """One request straight to one ingress replica; the spend row's cost per token."""
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30)
    raw = client.chat.completions.with_raw_response.create(model=MID, messages=[{"role": "user", "content": "x"}])
    row = app.spend_row(raw.headers["x-request-id"])
    return float(row["cost"]) / (row["prompt_tokens"] + row["completion_tokens"])


def test_a_price_change_lands_on_both_replicas_under_traffic(synced: Synced) -> None:
    ports = direct_ingress_ports(PREFIX)
    assert len(ports) == 2
    old_price = synced.config["model_list"][1]["model_info"]["input_cost_per_token"]
    for port in ports:
        assert charged_per_token(synced.app, f"http://127.0.0.1:{port}{PREFIX}") == pytest.approx(old_price)
    before = synced.status()["applied"]
    with Traffic(synced.app.base) as traffic:
        uploaded = time.time()
        version = synced.upload(synced.with_price(4e-6))
        eventually(lambda: synced.replicas_on(version), what="both replicas on the new price")
        took = max(r["applied_at"] for r in synced.status()["replicas"]) - uploaded
        print(f"config sync: both replicas applied the new price {took:.2f} s after the upload (poll 0.5 s)")
        done = traffic.ok
        eventually(lambda: traffic.ok > done + 10, what="traffic after the change")
    assert traffic.failures == [] and traffic.ok > 20
    for port in ports:  # each replica charges the new price
        base = f"http://127.0.0.1:{port}{PREFIX}"
        assert charged_per_token(synced.app, base) == pytest.approx(4e-6)
        status = synced.status(base)
        assert status["applied"]["seq"] == before["seq"] + 1 and status["applied"]["hash"] != before["hash"]
    change = synced.status()["record"]
    assert change["diff"] == [f"~ model {MID}: model_info.input_cost_per_token 5e-07 -> 4e-06",
                              f"~ model {MID}: model_info.output_cost_per_token 5e-07 -> 4e-06"]
    audit = httpx.get(f"{synced.app.base}/audit/log", headers=ADMIN, timeout=10).json()["data"]
    applies = [r for r in audit if r["action"] == "config.apply" and r["target"] == version]
    assert len(applies) == 1 and applies[0]["actor"] == "config-sync"


def test_an_invalid_version_is_never_applied_and_reported(synced: Synced) -> None:
    running = synced.status()["applied"]
    bad = synced.with_price(9e-6)
    bad["general_settings"]["no_such_setting"] = True
    bad["model_list"][0]["litellm_params"]["api_key"] = "os.environ/ROUTEIQ_SYNC_TEST_NOT_SET"
    message = refused(synced, bad, running)
    assert "general_settings.no_such_setting: Extra inputs are not permitted" in message
    assert "ROUTEIQ_SYNC_TEST_NOT_SET is not set" in message
    ready = httpx.get(f"{synced.app.base}/health/readiness", timeout=10)
    assert ready.status_code == 200 and ready.json()["config_sync"]["status"] == "degraded"
    assert charged_per_token(synced.app, synced.app.base) != pytest.approx(9e-6)  # the running price serves
    unknown_artifact = synced.with_price(9e-6)  # valid schema: the artifact check runs, and refuses
    unknown_artifact["router_settings"]["routers"].append(
        {"name": "learned", "strategy": "learned", "artifact": "/nonexistent/router-artifact"})
    assert refused(synced, unknown_artifact, running).startswith("router_settings.routers[1].artifact: ")
    fixed = synced.upload(synced.with_price(3e-6))
    eventually(lambda: synced.replicas_on(fixed), what="the fixed version applied")
    assert httpx.get(f"{synced.app.base}/health/readiness", timeout=10).json()["status"] == "ready"


def refused(synced: Synced, config: dict[str, Any], running: dict[str, Any]) -> str:
    """Upload ``config``, wait until both replicas refuse it; the refusal's message."""
    version = synced.upload(config)

    def refused_everywhere() -> bool:
        replicas = synced.status()["replicas"]
        return len(replicas) == 2 and all((r["error"] or {}).get("version") == version for r in replicas)

    eventually(refused_everywhere, what="both replicas refusing the version")
    status = synced.status()
    assert status["applied"]["hash"] == running["hash"] and status["last_error"]["kind"] == "invalid"
    assert status["last_error"]["version"] == version
    return str(status["last_error"]["message"])


def test_s3_down_during_sync_is_reported_and_traffic_is_unaffected(synced: Synced) -> None:
    applied = synced.status()["applied"]
    with Traffic(synced.app.base) as traffic:
        synced.s3.stop()
        try:
            def failing_everywhere() -> bool:
                replicas = synced.status()["replicas"]
                return len(replicas) == 2 and all((r["error"] or {}).get("kind") == "source" for r in replicas)

            eventually(failing_everywhere, what="both replicas reporting S3 down")
            status = synced.status()
            assert (status["applied"]["hash"], status["applied"]["seq"]) == (applied["hash"], applied["seq"])
            assert f"s3://{synced.bucket}/{KEY}" in status["last_error"]["message"]
            ready = httpx.get(f"{synced.app.base}/health/readiness", timeout=10)
            assert ready.status_code == 200 and ready.json()["config_sync"] == {
                "status": "degraded", "error": "source", "since": ready.json()["config_sync"]["since"]}
            done = traffic.ok
            eventually(lambda: traffic.ok > done + 10, what="traffic while S3 is down")
        finally:
            synced.s3.start()
        version = synced.upload(synced.with_price(2e-6))
        eventually(lambda: synced.replicas_on(version), what="sync recovered")
    assert traffic.failures == []
    assert charged_per_token(synced.app, synced.app.base) == pytest.approx(2e-6)


async def test_a_new_provider_group_is_applied_as_a_serve_update_with_streams_intact(synced: Synced) -> None:
    """Last in the module: it rebuilds the app's graph (new ingress replicas)."""
    from ray import serve

    client = openai.AsyncOpenAI(base_url=f"{synced.app.base}/v1", api_key=MASTER_KEY, max_retries=0, timeout=120)
    streams = Streams(client, MID, "sync", tokens=250)
    await asyncio.wait_for(streams.started.wait(), 60)
    grown = synced.with_price(2e-6)
    extra = copy.deepcopy(next(e for e in grown["model_list"] if e["model_name"] == MID))
    grown["model_list"].append({**extra, "model_name": "extra-model", "provider_group": "sync-extra"})
    version = synced.upload(grown)

    def submitted() -> bool:
        app = serve.status().applications.get("sync")
        return bool(app and "Provider-sync-extra" in app.deployments)

    await asyncio.to_thread(eventually, submitted, 60.0, "the Serve update submitted")
    assert not all(s.done() for s in streams.tasks)  # the update rolls the app while the streams run
    streams.assert_intact(await streams.finish())

    def updated() -> bool:
        app = serve.status().applications.get("sync")
        return bool(app and "Provider-sync-extra" in app.deployments and app.status == "RUNNING"
                    and synced.replicas_on(version))

    await asyncio.to_thread(eventually, updated, 180.0, "the Serve update running the new version")
    reply = await client.chat.completions.create(model="extra-model", messages=[{"role": "user", "content": "new"}])
    assert reply.choices[0].message.content and reply.choices[0].message.content.startswith("echo: new")
    record = synced.status()["record"]
    assert record["version"] == version and "+ provider group sync-extra" in record["diff"]
    await client.close()
