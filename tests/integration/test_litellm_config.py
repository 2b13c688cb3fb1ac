"""A LiteLLM proxy config file served through the real Serve graph (issue #17, "Config").

``tests/data/litellm_configs/proxy_served.yaml`` is LiteLLM's shape as is (only the fake
upstream's URL is filled in): ``environment_variables`` feeding ``os.environ/`` keys in the
replicas, a wildcard deployment, a ``model_group_alias``, two deployments at ``rpm: 1``,
``usage-based-routing-v2``, ``context_window_fallbacks`` and ``litellm_settings``. The
deployment limits and usage counters live in the session's Redis. The official ``openai``
SDK is the client; what reached the upstream is read back from the fake upstream.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from tests.access_support import access_general
from tests.integration.gateway_app import SMALL

NAME = "litellmcfg"
FILE = Path(__file__).parents[1] / "data" / "litellm_configs" / "proxy_served.yaml"
MASTER = "sk-litellm-config-test"
ENV = "ROUTEIQ_LITELLM_IT_KEY"


@pytest.fixture(scope="module")
def client(deploy_gateway: Callable[..., str], upstream: Any, redis_server: Any,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    from ray import serve

    raw = yaml.safe_load(FILE.read_text().replace("${UPSTREAM}", upstream.url))
    general = access_general("embedded", str(tmp_path_factory.mktemp(NAME)))
    raw["general_settings"] |= {**general, "redis_url": redis_server.url(), "decisions": {"enabled": False}}
    assert ENV not in os.environ  # so the replicas can only have it from the file
    overrides = {"Ingress": SMALL, "Provider-default": SMALL}
    url = deploy_gateway(raw, name=NAME, route_prefix=f"/{NAME}", overrides=overrides)
    try:
        yield openai.OpenAI(base_url=url, api_key=MASTER, max_retries=0)
    finally:
        serve.delete(NAME)
        os.environ.pop(ENV, None)


def _upstream_body(upstream: Any, rid: str) -> dict[str, Any]:
    seen = [r for r in upstream.state.requests if r["headers"].get("x-request-id") == rid]
    assert len(seen) == 1, seen
    return dict(seen[0]["body"], authorization=seen[0]["headers"].get("authorization"))


def _chat(client: openai.OpenAI, model: str, text: str = "hello") -> tuple[str, str]:
    """(the request id, the model that answered per `x-routeiq-model`)."""
    raw = client.chat.completions.with_raw_response.create(model=model, messages=[{"role": "user", "content": text}],
                                                           max_tokens=16)
    raw.parse()
    return raw.headers["x-request-id"], raw.headers["x-routeiq-model"]


def test_a_wildcard_serves_any_openai_name_with_the_files_env_key(client: openai.OpenAI, upstream: Any) -> None:
    rid, model = _chat(client, "openai/gpt-4o-mini")
    sent = _upstream_body(upstream, rid)
    assert model == "openai/gpt-4o-mini" and sent["model"] == "gpt-4o-mini"
    assert sent["authorization"] == "Bearer sk-up-from-the-file"  # environment_variables reached the replica
    listed = {m.id for m in client.models.list()}
    assert {"openai/*", "limited", "pair", "short", "long", "big"} <= listed and "big-hidden" not in listed
    with pytest.raises(openai.NotFoundError):
        _chat(client, "mistral/large")


def test_a_model_group_alias_is_served_by_its_group(client: openai.OpenAI, upstream: Any) -> None:
    for alias in ("big", "big-hidden"):
        rid, model = _chat(client, alias)
        assert model == "long" and _upstream_body(upstream, rid)["model"] == "long"


def test_rpm_limited_deployments_give_way_then_429(client: openai.OpenAI, upstream: Any) -> None:
    served = {_upstream_body(upstream, _chat(client, "limited")[0])["model"] for _ in range(2)}
    assert served == {"limited-a", "limited-b"}  # the one at its rpm gave way to the other
    with pytest.raises(openai.RateLimitError) as err:
        _chat(client, "limited")
    assert err.value.code == "deployment_rate_limited"
    assert err.value.response.headers.get("retry-after")


def test_usage_based_routing_alternates_between_equally_used_deployments(client: openai.OpenAI,
                                                                          upstream: Any) -> None:
    served = [_upstream_body(upstream, _chat(client, "pair", f"turn {i}")[0])["model"] for i in range(4)]
    assert sorted(served) == ["pair-a", "pair-a", "pair-b", "pair-b"]  # each goes to the less used one


def test_a_context_window_error_falls_back_to_the_configured_model(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="short", messages=[{"role": "user", "content": "too long for short [[fake error=context only=short]]"}])
    raw.parse()
    assert (raw.headers["x-routeiq-model"], raw.headers["x-routeiq-fallback-from"]) == ("long", "short")
    with pytest.raises(openai.BadRequestError):  # no context_window_fallbacks for long: the 400 is the answer
        _chat(client, "long", "too long for long too [[fake error=context only=long]]")
