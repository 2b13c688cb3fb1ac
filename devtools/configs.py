"""Gateway config dicts for tests, benchmarks and the demo's tooling.

``gateway_config`` builds three chat models of clearly different price, an embedding
model and two routers, all pointing at one upstream; ``learned_gateway_config`` builds
the routing data set's nine models behind the shipped learned router. Both refuse a
Redis or Postgres URL on this machine's default ports (6379, 5432): those servers belong
to the developer (or to other suites), and tests bring their own
(``devtools.services``). A URL on another host is left alone: it is only parsed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MASTER_KEY = "sk-test-master"
CHEAP, MID, PRICEY = "tiny-model", "mid-model", "big-model"
ARTIFACT = Path(__file__).resolve().parents[1] / "router_models/pretrained/default"
"""The shipped default router artifact."""

DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "postgresql": 5432, "postgres": 5432}
LOCAL_HOSTS = {"", "127.0.0.1", "localhost", "::1", "0.0.0.0"}


class MachineServiceError(ValueError):
    """A config pointed at the machine's own Redis or Postgres."""


def refuse_machine_services(general: dict[str, Any]) -> None:
    """Raise when ``redis_url``/``database_url`` is a local server on its default port."""
    for field in ("redis_url", "database_url"):
        url = general.get(field)
        if not isinstance(url, str) or "://" not in url:
            continue
        scheme, _, rest = url.partition("://")
        hosts = rest.partition("/")[0].rpartition("@")[2]
        for host in hosts.split(","):  # several: a cluster's nodes, Sentinels, a Postgres failover pair
            parts = urlsplit(f"{scheme}://{host}")
            default = DEFAULT_PORTS.get(scheme.split("+")[0])
            port = parts.port or default
            if (parts.hostname or "") in LOCAL_HOSTS and port == default:
                raise MachineServiceError(
                    f"{field} {parts.hostname or 'localhost'}:{port} is this machine's own server; start one for "
                    "the test with devtools.services (the tests' redis_server/postgres_server fixtures)")


def gateway_config(upstream: str, **general: Any) -> dict[str, Any]:
    """Three chat models of clearly different price, an embedding model, and routers."""
    refuse_machine_services(general)

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
            "routers": [  # scored in the router-scoring replica (not their default): the tests' graph has the hop
                {"name": "auto", "strategy": "cost-first", "fallback_model": MID, "scoring": "replica"},
                {"name": "shuffle", "strategy": "weighted-shuffle", "candidates": [CHEAP, MID], "scoring": "replica"},
            ],
            "num_retries": 2,
            "retry_backoff_s": 0.01,
        },
        "general_settings": {"master_key": MASTER_KEY, "max_request_body_bytes": 65536,
                             "request_timeout_s": 3, **general},
    }


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
