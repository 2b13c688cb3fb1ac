"""OpenTelemetry tracing: one trace per request across ingress, router-scoring and provider-call.

Off unless the standard environment turns it on: ``OTEL_TRACES_EXPORTER`` = ``otlp``
(``OTEL_EXPORTER_OTLP_PROTOCOL`` = ``http/protobuf`` or ``grpc``, endpoint from
``OTEL_EXPORTER_OTLP_ENDPOINT``), ``console``, or both (comma-separated). Sampling follows
``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG``. Each process (replica) calls
``configure_tracing`` once. Context crosses DeploymentHandles as W3C ``traceparent``
headers carried inside ``RouteQuery``/``ProviderCall``, so no Ray tracing hook is needed.
With tracing off, spans are no-ops and requests still forward a ``traceparent``.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context

TRACER = "routeiq"
_lock = threading.Lock()
_installed: list[bool] = []
"""Non-empty once this process installed its tracer provider."""


def _exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER: unsupported exporter {name!r} (otlp, console, none)")
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter()


def configure_tracing(component: str, processors: list[Any] | None = None) -> bool:
    """Install the SDK tracer provider from ``OTEL_*`` (or the given span processors).

    Returns whether tracing is on. Safe to call more than once per process.
    """
    names = [n.strip() for n in os.environ.get("OTEL_TRACES_EXPORTER", "none").lower().split(",") if n.strip()]
    names = [n for n in names if n != "none"]
    if not names and not processors:
        return bool(_installed)
    with _lock:
        if _installed:
            return True
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "routeiq"),
                                    "routeiq.component": component})
        provider = TracerProvider(resource=resource)
        for processor in processors or [BatchSpanProcessor(_exporter(n)) for n in names]:
            provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        _installed.append(True)
        return True


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER)


def extract(headers: Mapping[str, str]) -> Context:
    """The trace context carried by W3C headers (empty when there is none)."""
    return propagate.extract(dict(headers))


def headers_for(context: Context, fallback: Mapping[str, str] | None = None) -> dict[str, str]:
    """W3C headers for ``context``; without a recording span, the incoming ones or a new root."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    if "traceparent" in carrier:
        return carrier
    if fallback and "traceparent" in fallback:
        return {k: v for k, v in fallback.items() if k in ("traceparent", "tracestate")}
    return {"traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"}
