"""Shared test helpers: gateway configs pointing at a fake upstream, servers in threads."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any, Self

from aiohttp import web

from tests.fake_upstream.faults import Faults
from tests.fake_upstream.server import UPSTREAM, FakeUpstream, build_app

MASTER_KEY = "sk-test-master"
CHEAP, MID, PRICEY = "tiny-model", "mid-model", "big-model"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gateway_config(upstream: str, **general: Any) -> dict[str, Any]:
    """Three chat models of clearly different price, an embedding model, and routers."""

    def entry(name: str, price: float, group: str, ctx: int = 8192, **info: Any) -> dict[str, Any]:
        return {
            "model_name": name,
            "litellm_params": {"model": f"openai/{name}", "api_base": upstream, "api_key": "sk-up"},
            "model_info": {"input_cost_per_token": price / 1e6, "output_cost_per_token": price / 1e6,
                           "max_input_tokens": ctx, **info},
            "provider_group": group,
        }

    return {
        "model_list": [
            entry(CHEAP, 0.1, "small", ctx=64),
            entry(MID, 0.5, "small", capabilities=["tools"]),
            entry(PRICEY, 2.0, "large", ctx=32768, capabilities=["tools", "vision"]),
            entry("embed-model", 0.02, "small", mode="embedding"),
            {"model_name": "via-litellm", "provider_group": "slow",
             "litellm_params": {"model": "openai/via-litellm", "api_base": upstream, "api_key": "sk-up"},
             "model_info": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}},
        ],
        "provider_groups": [{"name": "small"}, {"name": "large"}, {"name": "slow", "transport": "litellm"}],
        "router_settings": {
            "routers": [
                {"name": "auto", "strategy": "cost-first", "fallback_model": MID},
                {"name": "shuffle", "strategy": "weighted-shuffle", "candidates": [CHEAP, MID]},
            ],
            "num_retries": 2,
            "retry_backoff_s": 0.01,
        },
        "general_settings": {"master_key": MASTER_KEY, "max_request_body_bytes": 65536,
                             "request_timeout_s": 3, **general},
    }


class ThreadedServer:
    """An aiohttp app on a free port, in a background thread with its own loop."""

    def __init__(self, app: web.Application) -> None:
        self.port = free_port()
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=0.5)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def start(self) -> Self:
        self._thread.start()
        wait_port(self.port)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


class ThreadedFakeUpstream(ThreadedServer):
    """The fake upstream (tests/fake_upstream) on a free port."""

    def __init__(self, defaults: Faults | None = None) -> None:
        super().__init__(build_app(defaults))
        self.url = f"http://127.0.0.1:{self.port}/v1"

    @property
    def state(self) -> FakeUpstream:
        return self._app[UPSTREAM]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open")


ARTIFACT = Path(__file__).resolve().parents[1] / "router_models/pretrained/default"


def learned_gateway_config(upstream: str, artifact: Path = ARTIFACT) -> dict[str, Any]:
    """The routing data's 9 models at their prices, one provider group, and learned routers."""
    from router_models.data.loader import load_prices

    prices = load_prices()
    models = json.loads((artifact / "manifest.json").read_text())["models"]
    entries = [
        {"model_name": m, "provider_group": "pool",
         "litellm_params": {"model": f"openai/{m}", "api_base": upstream, "api_key": "sk-up"},
         "model_info": {"input_cost_per_token": prices[m] / 1e6, "output_cost_per_token": prices[m] / 1e6}}
        for m in models
    ]
    cheapest = min(models, key=lambda m: prices[m])
    return {
        "model_list": entries,
        "router_settings": {
            "routers": [
                {"name": "auto", "strategy": "learned", "artifact": str(artifact), "fallback_model": cheapest,
                 "timeout_ms": 5000},
                {"name": "auto-hurried", "strategy": "learned", "artifact": str(artifact),
                 "fallback_model": cheapest, "timeout_ms": 0.001},
            ],
            "aliases": {"auto:quality": {"router": "auto", "lambda": 0.0},
                        "auto:cost": {"router": "auto", "lambda": 5.0}},
        },
        "general_settings": {"master_key": MASTER_KEY, "access": {"enabled": False}},
    }
