"""A redeploy while streams are in flight: every stream finishes intact on the old replicas."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
import time

import httpx
import openai
from ray import serve

from app.config import parse_config
from deployments.graph import build_graph
from devtools.configs import MASTER_KEY, MID, gateway_config
from tests.integration.streams import Streams, direct_ingress_ports


async def test_redeploy_under_twenty_active_streams(deploy_gateway, upstream) -> None:
    cfg = copy.deepcopy(gateway_config(upstream.url))
    url = deploy_gateway(cfg, name="drain", route_prefix="/drain")
    client = openai.AsyncOpenAI(base_url=url, api_key=MASTER_KEY, max_retries=0, timeout=60)
    old_ports = direct_ingress_ports("/drain")  # the replicas serving the streams now
    streams = Streams(client, MID, "drain", tokens=200)
    await asyncio.wait_for(streams.started.wait(), 30)
    # A new config (new init args) rolls every replica of the app while the streams run.
    changed = copy.deepcopy(cfg)
    changed["general_settings"]["request_timeout_s"] = 4
    draining_seen: list[float] = []
    readiness_draining: list[float] = []
    done = threading.Event()

    def watch() -> None:  # records when old replicas are stopping while we stream
        while not done.is_set():
            app = serve.status().applications.get("drain")
            if app and any(d.replica_states.get("STOPPING") for d in app.deployments.values()):
                draining_seen.append(time.monotonic())
            for port in old_ports:  # the old ingress replica's own readiness, asked directly
                with contextlib.suppress(httpx.HTTPError):
                    resp = httpx.get(f"http://127.0.0.1:{port}/drain/health/readiness", timeout=2)
                    if resp.status_code == 503 and resp.json().get("status") == "draining":
                        readiness_draining.append(time.monotonic())
            time.sleep(0.2)

    # Bound here, in the main thread: binding deployments touches cloudpickle's global
    # registry and is not thread-safe; only serve.run goes to the background thread.
    app = build_graph(parse_config(changed))
    thread = threading.Thread(target=serve.run, args=(app,), kwargs={"name": "drain", "route_prefix": "/drain"})
    watcher = threading.Thread(target=watch, daemon=True)
    thread.start()
    watcher.start()
    texts = await streams.finish()
    assert await asyncio.to_thread(_join_all, thread, watcher, done)
    streams.assert_intact(texts)
    # Old replicas were stopping (draining) while the streams were still running, and the
    # old ingress replica's readiness said 503 draining meanwhile.
    assert draining_seen and draining_seen[0] < min(streams.ended)
    assert old_ports and readiness_draining and readiness_draining[0] < max(streams.ended)
    # and the new version serves
    reply = await client.chat.completions.create(model=MID, messages=[{"role": "user", "content": "after"}])
    assert reply.choices[0].message.content.startswith("echo: after")
    await client.close()


def _join_all(redeploy: threading.Thread, watcher: threading.Thread, done: threading.Event) -> bool:
    """Wait for the redeploy, stop the watcher; True when neither thread is left running.

    No Serve call may outlive the test: ``serve.status()`` touches cloudpickle's global
    registry too, and a straggling call broke the next module's graph binding once in CI.
    """
    redeploy.join(120)
    done.set()
    watcher.join(30)
    return not redeploy.is_alive() and not watcher.is_alive()

