"""A tiny OTLP/HTTP trace receiver for tests: collects exported spans in memory."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from devtools.servers import ThreadedServer


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    service: dict[str, Any] = field(default_factory=dict)


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


class OTLPReceiver(ThreadedServer):
    """Accepts ``POST /v1/traces`` (OTLP protobuf over HTTP) and keeps the spans."""

    def __init__(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        super().__init__(app)
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self.endpoint = f"http://127.0.0.1:{self.port}"

    async def _traces(self, request: web.Request) -> web.Response:
        req = ExportTraceServiceRequest()
        req.ParseFromString(await request.read())
        with self._lock:
            for rs in req.resource_spans:
                service = _attrs(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        self.spans.append(ReceivedSpan(s.name, s.trace_id.hex(), s.span_id.hex(),
                                                       s.parent_span_id.hex(), _attrs(s.attributes), service))
        return web.Response(status=200, content_type="application/x-protobuf")

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]
