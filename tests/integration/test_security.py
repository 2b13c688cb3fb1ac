"""What a client may send through the real graph: its body never steers the gateway's own
connections, steering values are validated strictly, upstream error text is not reflected,
and the API map is not published. (The access-side classes are in test_access_security.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.configs import MASTER_KEY, MID
from devtools.servers import ThreadedFakeUpstream

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def attacker() -> Iterator[ThreadedFakeUpstream]:
    """A second server, standing for where an attacker would like the gateway to connect."""
    server = ThreadedFakeUpstream().start()
    yield server
    server.stop()


def post(gateway_url: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(f"{gateway_url}/chat/completions", json=body, headers={**AUTH, **headers}, timeout=30)


def _seen(upstream: ThreadedFakeUpstream, marker: str) -> list[dict[str, Any]]:
    return [r for r in upstream.state.requests if marker in str(r["body"])]


@pytest.mark.parametrize("model", ["via-litellm", MID])  # the litellm transport and the native pass-through
def test_a_body_cannot_redirect_the_call_or_its_credentials(gateway_url: str, upstream: Any,
                                                            attacker: ThreadedFakeUpstream, model: str) -> None:
    marker = uuid.uuid4().hex
    steer = {"api_base": attacker.url, "base_url": attacker.url, "api_key": "sk-attacker",
             "extra_headers": {"x-evil": "1"}, "headers": {"x-evil": "1"}, "custom_llm_provider": "openai",
             "mock_response": "mocked!", "ssl_verify": False, "fallbacks": [{"model": "x"}]}
    body = {"model": model, "messages": [{"role": "user", "content": marker}], "top_k": 3, **steer}
    resp = post(gateway_url, body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"].startswith(f"echo: {marker}")  # not the mock
    assert _seen(attacker, marker) == []
    [seen] = _seen(upstream, marker)
    assert seen["headers"]["authorization"] == "Bearer sk-up"  # the configured key, not the client's
    assert not set(steer) & set(seen["body"])
    if model == MID:
        assert seen["body"]["top_k"] == 3  # provider extensions still reach an OpenAI-compatible server


@pytest.mark.parametrize(("field", "value"), [
    ("stream", "false"), ("max_tokens", "5"), ("n", 0), ("n", 1000), ("temperature", "0.5"),
    ("routeiq", {"lambda": "0.5"}), ("routeiq", {"lambda": -1}), ("stream_options", {"include_usage": "yes"}),
    ("model", 7),
])
def test_steering_values_are_validated_strictly(gateway_url: str, field: str, value: Any) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "x"}], field: value}
    resp = post(gateway_url, body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"].split(".")[0] == field


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "1e999", "-1", "cheap"])
def test_a_bad_lambda_header_is_a_400(gateway_url: str, raw: str) -> None:
    resp = post(gateway_url, {"model": "auto", "messages": [{"role": "user", "content": "x"}]},
                **{"x-routeiq-lambda": raw})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "x-routeiq-lambda"


@pytest.mark.parametrize("raw", [b'{"model": "auto", "x": 1e999}', b'{"model": "auto", "x": NaN}'])
def test_non_finite_json_numbers_are_a_400(gateway_url: str, raw: bytes) -> None:
    resp = httpx.post(f"{gateway_url}/chat/completions", content=raw,
                      headers={**AUTH, "content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"


def test_upstream_error_text_is_not_reflected(gateway_url: str) -> None:
    resp = post(gateway_url, {"model": MID, "messages": [
        {"role": "user", "content": "x [[fake error=429 retry_after=2]]"}]})
    assert resp.status_code == 429 and resp.headers["retry-after"] == "2"
    message = resp.json()["error"]["message"]
    assert "fake" not in message and MID in message  # the upstream said "fake 429"


def test_the_api_map_is_not_published(gateway_url: str) -> None:
    base = gateway_url.removesuffix("/v1")
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert httpx.get(f"{base}{path}").status_code == 404
