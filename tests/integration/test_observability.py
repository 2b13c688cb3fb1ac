"""One trace per request across the graph (OTLP to a receiver), and metrics on Prometheus."""

from __future__ import annotations

import copy
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import openai
import pytest

from deployments.graph import INGRESS, ROUTER_SCORING, provider_deployment_name
from devtools.configs import MASTER_KEY, MID, PRICEY, gateway_config
from tests.integration.conftest import METRICS_PORT
from tests.otlp_receiver import OTLPReceiver, ReceivedSpan


@pytest.fixture(scope="module")
def receiver() -> Iterator[OTLPReceiver]:
    server = OTLPReceiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def traced_url(deploy_gateway, upstream, receiver: OTLPReceiver) -> str:
    env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
           "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    options = {"ray_actor_options": {"num_cpus": 0.25, "runtime_env": {"env_vars": env}}}
    names = [INGRESS, ROUTER_SCORING, *(provider_deployment_name(g) for g in ("small", "large", "slow"))]
    cfg = copy.deepcopy(gateway_config(upstream.url))
    cfg["router_settings"]["fallbacks"] = [{MID: [PRICEY]}]
    return deploy_gateway(cfg, name="traced", route_prefix="/traced", overrides={n: options for n in names})


def _spans(receiver: OTLPReceiver, trace_id: str, names: set[str],
           at_least: dict[str, int] | None = None) -> dict[str, list[ReceivedSpan]]:
    """The trace's spans by name, once each of ``names`` arrived (``at_least``: that many of a name:
    replicas export on their own, so one provider's span can arrive well before another's)."""
    want = {n: 1 for n in names} | (at_least or {})
    deadline = time.monotonic() + 60  # batched export (100 ms) from several replicas; generous under load
    while time.monotonic() < deadline:
        got = Counter(s.name for s in receiver.trace(trace_id))
        if all(got[n] >= k for n, k in want.items()):
            break
        time.sleep(0.2)
    by_name: dict[str, list[ReceivedSpan]] = {}
    for s in receiver.trace(trace_id):
        by_name.setdefault(s.name, []).append(s)
    assert names <= set(by_name), f"missing {names - set(by_name)}"
    return by_name


def _client(url: str) -> tuple[openai.OpenAI, str]:
    trace_id = secrets.token_hex(16)
    parent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    client = openai.OpenAI(base_url=url, api_key=MASTER_KEY, max_retries=0,
                           default_headers={"traceparent": parent})
    return client, trace_id


def test_auto_routed_request_is_one_connected_trace(traced_url: str, receiver: OTLPReceiver, upstream) -> None:
    client, trace_id = _client(traced_url)
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "t"}], extra_headers={"x-routeiq-lambda": "0.5"})
    rid = raw.headers["x-request-id"]
    spans = _spans(receiver, trace_id, {"routeiq.request", "routeiq.route", "routeiq.score", "routeiq.provider"})
    request, route = spans["routeiq.request"][0], spans["routeiq.route"][0]
    score, provider = spans["routeiq.score"][0], spans["routeiq.provider"][0]
    assert route.parent_id == request.span_id and score.parent_id == route.span_id
    assert provider.parent_id == request.span_id
    assert {request.service["routeiq.component"], score.service["routeiq.component"],
            provider.service["routeiq.component"]} == {"ingress", "router-scoring", "provider-small"}
    assert route.attributes["router.strategy"] == "cost-first" and route.attributes["router.model"] == raw.headers[
        "x-routeiq-model"]
    assert {"router.score", "router.candidates", "router.latency_ms"} <= set(route.attributes)
    assert route.attributes["router.lambda"] == 0.5
    assert provider.attributes["gen_ai.usage.output_tokens"] == 16
    assert provider.attributes["gen_ai.response.finish_reasons"] == "stop"
    for span in (request, route, score, provider):
        assert span.attributes["routeiq.request_id"] == rid
    # the upstream got the provider span's context
    seen = next(r for r in upstream.state.requests if r["headers"].get("x-request-id") == rid)
    assert seen["headers"]["traceparent"].split("-")[1:3] == [trace_id, provider.span_id]


def test_streamed_and_failed_over_requests_are_traced(traced_url: str, receiver: OTLPReceiver) -> None:
    client, trace_id = _client(traced_url)
    stream = client.chat.completions.create(model=MID, messages=[{"role": "user", "content": "s"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    spans = _spans(receiver, trace_id, {"routeiq.request", "routeiq.provider"})
    assert spans["routeiq.provider"][0].parent_id == spans["routeiq.request"][0].span_id
    assert spans["routeiq.provider"][0].attributes["gen_ai.usage.output_tokens"] == 16

    client, trace_id = _client(traced_url)
    client.chat.completions.create(model=MID, messages=[{"role": "user", "content": f"[[fake error=500 only={MID}]]"}])
    spans = _spans(receiver, trace_id, {"routeiq.request", "routeiq.provider"}, at_least={"routeiq.provider": 2})
    providers = {s.attributes["gen_ai.request.model"] for s in spans["routeiq.provider"]}
    assert providers == {MID, PRICEY}
    assert spans["routeiq.request"][0].attributes["routeiq.fallback_from"] == MID


def _scrape(pattern: str) -> list[str]:
    deadline = time.monotonic() + 90  # Ray's metrics agent exports on its own period
    lines: list[str] = []
    while time.monotonic() < deadline:
        text = httpx.get(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5).text
        lines = [line for line in text.splitlines() if re.search(pattern, line)]
        if lines:
            return lines
        time.sleep(1)
    return lines


def test_metrics_on_the_prometheus_endpoint(gateway_url: str) -> None:
    client = openai.OpenAI(base_url=gateway_url, api_key=MASTER_KEY, max_retries=0)
    client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "m"}])
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "m"}])
    assert _scrape(r'^ray_routeiq_requests_total\{.*model="tiny-model".*status="200".*strategy="cost-first"')
    assert _scrape(r'^ray_routeiq_rejections_total\{.*reason="model_not_found"')
    assert _scrape(r'^ray_routeiq_routing_latency_s_bucket\{.*router="auto"')
    assert _scrape(r'^ray_routeiq_tokens_total\{.*kind="completion".*model="tiny-model"')
    assert _scrape(r'^ray_routeiq_active_streams\{.*deployment="Ingress"')
    assert _scrape(r'^ray_routeiq_cost_usd_total\{')
