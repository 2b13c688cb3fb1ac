"""Spans of one request, in-process, with an in-memory exporter: one connected trace each."""

from __future__ import annotations

import copy
import secrets
import threading
from collections.abc import Iterator

import openai
import pytest
import uvicorn
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.config import parse_config
from app.main import create_app
from app.providers.pool import LocalProviderPool
from app.tracing import configure_tracing
from app.wiring import build_gateway
from devtools.configs import MASTER_KEY, MID, PRICEY, gateway_config
from devtools.servers import free_port, wait_port
from router_models.inference.service import RouterSpec, RoutingService

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def base_url(upstream) -> Iterator[str]:
    assert configure_tracing("test", processors=[SimpleSpanProcessor(EXPORTER)]), "tracing already configured"
    raw = copy.deepcopy(gateway_config(upstream.url, access={"enabled": False}, decisions={"enabled": False}))
    raw["router_settings"]["fallbacks"] = [{MID: [PRICEY]}]
    cfg = parse_config(raw)
    router = RoutingService([RouterSpec(r.name, r.strategy, r.artifact, r.lam) for r in cfg.router_settings.routers])
    app = create_app(build_gateway(cfg, LocalProviderPool(cfg), router))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port(port)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=5)


def _traced(base_url: str) -> tuple[openai.OpenAI, str]:
    trace_id = secrets.token_hex(16)
    headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    return openai.OpenAI(base_url=base_url, api_key=MASTER_KEY, max_retries=0, default_headers=headers), trace_id


def _spans(trace_id: str) -> dict[str, list]:
    """RouteIQ's spans of one trace (FastAPI's own spans, if any, are left out)."""
    out: dict[str, list] = {}
    for span in EXPORTER.get_finished_spans():
        if f"{span.context.trace_id:032x}" == trace_id and span.name.startswith("routeiq."):
            out.setdefault(span.name, []).append(span)
    return out


def _one_tree(spans: dict[str, list]) -> None:
    request = spans["routeiq.request"][0]
    for name, group in spans.items():
        for span in group:
            if name != "routeiq.request":
                assert span.parent.span_id == request.context.span_id, name
            assert span.attributes["routeiq.request_id"] == request.attributes["routeiq.request_id"]


def test_plain_request(base_url: str) -> None:
    client, trace_id = _traced(base_url)
    client.chat.completions.create(model=MID, messages=[{"role": "user", "content": "p"}])
    spans = _spans(trace_id)
    assert set(spans) == {"routeiq.request", "routeiq.provider"}
    _one_tree(spans)
    provider = spans["routeiq.provider"][0]
    assert provider.attributes["gen_ai.request.model"] == MID
    assert provider.attributes["gen_ai.usage.output_tokens"] == 16
    assert provider.attributes["gen_ai.response.finish_reasons"] == "stop"
    assert spans["routeiq.request"][0].attributes["http.response.status_code"] == 200


def test_streamed_request(base_url: str) -> None:
    client, trace_id = _traced(base_url)
    stream = client.chat.completions.create(model=MID, messages=[{"role": "user", "content": "s"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    spans = _spans(trace_id)
    _one_tree(spans)
    assert spans["routeiq.provider"][0].attributes["gen_ai.usage.output_tokens"] == 16


def test_auto_routed_request(base_url: str) -> None:
    client, trace_id = _traced(base_url)
    client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "a"}],
                                   extra_headers={"x-routeiq-lambda": "0.3"})
    spans = _spans(trace_id)
    _one_tree(spans)
    route = spans["routeiq.route"][0].attributes
    assert route["router.strategy"] == "cost-first" and route["router.lambda"] == 0.3
    assert route["router.model"] == spans["routeiq.provider"][0].attributes["gen_ai.request.model"]
    assert {"router.score", "router.candidates", "router.latency_ms"} <= set(route)


def test_failed_over_request(base_url: str) -> None:
    client, trace_id = _traced(base_url)
    client.chat.completions.create(model=MID, messages=[{"role": "user", "content": f"[[fake error=500 only={MID}]]"}])
    spans = _spans(trace_id)
    _one_tree(spans)
    models = [s.attributes["gen_ai.request.model"] for s in spans["routeiq.provider"]]
    assert sorted(models) == sorted([MID, PRICEY])
    failed = next(s for s in spans["routeiq.provider"] if s.attributes["gen_ai.request.model"] == MID)
    assert not failed.status.is_ok
    assert spans["routeiq.request"][0].attributes["routeiq.fallback_from"] == MID
