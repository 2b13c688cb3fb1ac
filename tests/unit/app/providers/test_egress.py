"""Upstream URLs: validated when the config loads; non-public addresses refused on request."""

from __future__ import annotations

import pytest

from app.config import ConfigError, parse_config
from app.providers.egress import is_public, resolve_problems, url_problem
from app.providers.openai_native import GuardedResolver
from devtools.configs import gateway_config


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://example.com/v1", "scheme"), ("http:///v1", "no host"), ("https://user:pw@example.com/v1", "credentials"),
    ("file:///etc/passwd", "scheme"), ("http://example.com:99999/v1", "not a valid URL"),
])
def test_bad_api_base_is_refused_at_load(url: str, why: str) -> None:
    assert why in (url_problem(url) or "")
    raw = gateway_config(url)
    with pytest.raises(ConfigError, match=r"model_list\[0\]\.litellm_params\.api_base"):
        parse_config(raw)


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "192.168.1.1", "100.100.100.200",
                                "::1", "fd00:ec2::254", "0.0.0.0"])
def test_non_public_addresses(ip: str) -> None:
    assert not is_public(ip)


def test_private_literal_refused_only_when_blocked() -> None:
    parse_config(gateway_config("http://10.0.0.5:8000/v1"))  # allowed by default
    with pytest.raises(ConfigError, match="not a public address"):
        parse_config(gateway_config("http://10.0.0.5:8000/v1", block_private_upstreams=True))


def test_host_names_are_resolved_when_the_graph_is_built() -> None:
    assert "non-public" in resolve_problems(["http://localhost:9/v1"])[0]
    from deployments.graph import build_graph

    cfg = parse_config(gateway_config("http://localhost:9/v1", block_private_upstreams=True))
    with pytest.raises(ConfigError, match="localhost"):
        build_graph(cfg)


async def test_the_native_resolver_refuses_non_public_answers() -> None:
    resolver = GuardedResolver()
    with pytest.raises(OSError, match="non-public"):
        await resolver.resolve("localhost", 80)
    await resolver.close()
