"""``Exchange``: one request, from admission to settlement, for JSON answers and streams alike.

The routes only validate and hand over: ``async with gateway.exchange(...) as ex`` admits
the request (503 when the replica is full), starts its clock and span; ``ex.answer``
plans, routes and calls; and one ``close`` (run exactly once, whatever ends the
request) does everything that must happen at the end, in this order: release the
admission slot, settle (spend and tokens: what the upstream reported, or an estimate
when a stream was cut or abandoned), metrics, the span, the routing decision record.

A JSON answer is closed when the route's ``async with`` block exits (so a failure
after the upstream answered still settles). A stream is handed to the response: its
relay generator closes the exchange when the stream ends, fails or is abandoned, and
``finish_stream`` (called by the response whatever happened, even if the body was
never iterated) makes sure of it. Must not: raise from ``close``, or settle twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from app.auth import Principal
from app.errors import RouteIQError, sse_error_event
from app.gateway.admission import Ticket
from app.gateway.decisions import DecisionRecord
from app.gateway.exploration import explore_header
from app.gateway.plan import NativeMessages, Plan, RequestContext
from app.providers.base import Endpoint, StreamEnd, StreamItem, Usage, next_item
from app.providers.estimate import estimate_tokens
from app.schemas.openai import Steering
from app.tracing import extract, headers_for, tracer

if TYPE_CHECKING:
    from app.gateway.core import Gateway

log = logging.getLogger("routeiq.exchange")
CLIENT_CLOSED = 499
"""Status recorded when the client went away before the answer was complete."""
USAGE_ESTIMATED = "x-routeiq-usage-estimated"
"""Header of a JSON answer whose upstream reported no usage (its charge is an estimate). A
stream's headers leave before its usage could arrive: its log line and records say it."""


@dataclass(frozen=True)
class Answer:
    """A complete JSON answer: the upstream's body (with ``usage.cost``) and RouteIQ's headers."""

    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class StreamAnswer:
    """A stream whose first item arrived: headers, and the SSE bytes to relay."""

    headers: dict[str, str]
    body: AsyncIterator[bytes]


class Exchange:
    """The one owner of a request's lifecycle (see the module docstring)."""

    def __init__(self, gateway: Gateway, endpoint: Endpoint, request_id: str, headers: Mapping[str, str],
                 route: str) -> None:
        self.gateway, self.endpoint, self.request_id = gateway, endpoint, request_id
        self._headers = headers
        self.started = time.perf_counter()
        self.arrived = time.time()
        # Under FastAPI's own tracing (when a tracer provider is installed) a server span is
        # already current and carries the caller's traceparent: nest under it; else extract.
        current = trace.get_current_span().get_span_context()
        parent = otel_context.get_current() if current.is_valid else extract(headers)
        self.span = tracer().start_span("routeiq.request", context=parent, kind=SpanKind.SERVER, attributes={
            "http.route": route, "gen_ai.operation.name": endpoint, "routeiq.request_id": request_id})
        self.otel = trace.set_span_in_context(self.span, parent)
        self.ctx: RequestContext | None = None
        self.plan: Plan | None = None
        self.usage: Usage | None = None
        """What the upstream reported (or was estimated) once it answered; None: not answered."""
        self._ticket: Ticket | None = None
        self._body: dict[str, Any] = {}
        self._relay: AsyncIterator[bytes] | None = None
        self._rest: AsyncIterator[StreamItem] | None = None
        self._events = 0
        self._closed = False
        self.error_event: Callable[[BaseException], bytes] = sse_error_event
        """How a failure after a stream started is told to the client (a route in another API's
        format relaying the upstream's own events sets its own)."""

    @classmethod
    def open(cls, gateway: Gateway, endpoint: Endpoint, request_id: str, headers: Mapping[str, str],
             route: str) -> Exchange:
        """A new exchange holding an admission slot; 503 (recorded) when the replica is full."""
        ex = cls(gateway, endpoint, request_id, headers, route)
        try:
            ex._ticket = gateway.admission.enter()
        except RouteIQError as err:
            ex.close(err.status, err)
            raise
        return ex

    async def __aenter__(self) -> Exchange:
        return self

    async def __aexit__(self, kind: Any, err: BaseException | None, tb: Any) -> None:
        if err is not None:
            await self._abandon()
            self.close(_status_of(err), err)
        elif self._relay is None:
            self.close(200)

    # answering --------------------------------------------------------------------------------
    async def answer(self, body: dict[str, Any], steering: Steering, principal: Principal,
                     lam: float | None, native: NativeMessages | None = None) -> Answer | StreamAnswer:
        """Plan, admit and call for a validated body (``steering``: its validated values,
        which alone steer the gateway); a stream once its first item arrived. ``native``: the
        Messages request as sent, for a deployment that speaks it (``body`` is its translation)."""
        gw = self.gateway
        self._body = body
        self.span.set_attribute("gen_ai.request.model", steering.model)
        explore = steering.explore and explore_header(self._headers)
        ctx = self.ctx = RequestContext(self.request_id, principal, steering, headers_for(self.otel, self._headers),
                                        lam, otel=self.otel, explore=explore, native=native)
        if steering.stream:
            self.plan, (first, rest) = await gw.stream(self.endpoint, body, ctx)
            self._rest = rest
            self._relay = self._relay_items(first, rest)
            return StreamAnswer({"cache-control": "no-cache", **self.plan.headers(), **self._rate_headers()},
                                self._relay)
        self.plan, result = await gw.complete(self.endpoint, body, ctx)
        self.usage = result.usage
        self.span.set_attributes(result.span_attributes())
        headers = {**self.plan.headers(), **self._rate_headers(), "x-routeiq-cost": f"{result.usage.cost:.10f}"}
        if result.usage.estimated:
            headers[USAGE_ESTIMATED] = "true"
            log.info("request %s settled on an estimate (usage_estimated): %d + %d tokens from %s",
                     self.request_id, result.usage.prompt_tokens, result.usage.completion_tokens, self.plan.model)
        return Answer(result.body, headers)

    def _rate_headers(self) -> dict[str, str]:
        """``x-ratelimit-*`` as the limiter counted at admission (keys with RPM/TPM limits)."""
        rate = self.ctx.reservation.rate if self.ctx is not None else None
        return rate.headers() if rate is not None else {}

    async def _relay_items(self, first: StreamItem, rest: AsyncIterator[StreamItem]) -> AsyncIterator[bytes]:
        """The client's side of the stream; whatever ends it closes the exchange once."""
        assert self._ticket is not None and self.plan is not None
        self._ticket.streaming()
        self.gateway.metrics.first_token(model=self.plan.model, seconds=time.perf_counter() - self.started)
        status, failure, item = 200, None, first
        try:
            while True:
                if isinstance(item, StreamEnd):
                    self.usage = item.usage
                    return
                self._events += item.count(b"data:")
                yield item
                if (found := await next_item(rest, self.gateway.stream_idle_s, self.plan.model)) is None:
                    return
                item = found
        except (asyncio.CancelledError, GeneratorExit):
            status = CLIENT_CLOSED
            raise
        except Exception as err:  # noqa: BLE001  (any failure mid-stream becomes an error event)
            log.warning("stream %s failed after it started: %s", self.request_id, err)
            status, failure = _status_of(err), err
            yield self.error_event(err)
        finally:
            self.close(status, failure)
            await _aclose(rest)

    async def finish_stream(self) -> None:
        """End a handed-over stream, whatever happened to the response (idempotent)."""
        await self._abandon()
        self.close(CLIENT_CLOSED)

    async def _abandon(self) -> None:
        if self._relay is not None:
            await _aclose(self._relay)  # runs the relay's own ``finally`` if it had started
        if self._rest is not None:
            await _aclose(self._rest)  # a relay that never started: cancel the provider call

    # the end ----------------------------------------------------------------------------------
    def close(self, status: int, err: BaseException | None = None) -> None:
        """Release, settle, measure, end the span, record the decision: exactly once."""
        if self._closed:
            return
        self._closed = True
        if self._ticket is not None:
            self._ticket.release()
        try:
            self._settle()
        except Exception:  # a settlement failure must not hide the answer
            log.exception("request %s could not be settled", self.request_id)
        self._measure(status, err)
        plan = self._planned
        if plan is not None and plan.decision is not None:
            self.gateway.decisions.record(self._decision(plan, status))

    @property
    def _planned(self) -> Plan | None:
        """The plan that answered, else the one made before the request failed."""
        return self.plan or (self.ctx.plan if self.ctx else None)

    def _settle(self) -> None:
        """Charge what the upstream answered (its usage, or an estimate for a cut stream) in
        place of the admission's reservation; release the reservation if nothing answered."""
        ctx, gw = self.ctx, self.gateway
        if ctx is None or ctx.plan is None:
            return  # refused before admission: nothing reserved, nothing to charge
        if self.plan is None or (self.usage is None and self._relay is None):
            gw.policy.settle(ctx.principal, ctx.plan.model, None, self.request_id, ctx.reservation)
            gw.settle_deployment(ctx, None)
            return
        if self.usage is None:
            self.usage = self._estimate()
        gw.settle_deployment(ctx, self.usage)
        model = self.plan.model
        gw.metrics.usage(model=model, prompt_tokens=self.usage.prompt_tokens,
                         completion_tokens=self.usage.completion_tokens, cost=self.usage.cost)
        gw.policy.settle(ctx.principal, model, self.usage, self.request_id, ctx.reservation)
        if self.plan.decision is not None:
            gw.explorer.charge(ctx.principal.key_id, self.plan.decision, self.usage.cost)

    def _estimate(self) -> Usage:
        """No usage arrived (stream cut or abandoned, or an upstream that reports none): the
        prompt at ~4 characters a token, and one token per SSE event relayed, at the
        deployment's prices."""
        assert self.plan is not None
        prompt, completion = estimate_tokens(self._body), self._events
        cost = self.gateway.prices(self.plan.deployment).cost(prompt, completion)
        log.info("request %s settled on an estimate (usage_estimated): %d + %d tokens from %s",
                 self.request_id, prompt, completion, self.plan.model)
        return Usage(prompt, completion, cost, estimated=True)

    def _measure(self, status: int, err: BaseException | None) -> None:
        plan = self._planned
        model, strategy = (plan.model, plan.strategy) if plan else ("none", "direct")
        metrics, seconds = self.gateway.metrics, time.perf_counter() - self.started
        metrics.request_done(endpoint=self.endpoint, model=model, status=status, strategy=strategy, seconds=seconds)
        self.gateway.request_stats.record(endpoint=self.endpoint, model=model, status=status, seconds=seconds)
        if status >= 400:
            metrics.rejected(reason=getattr(err, "code", None) or str(status))
        self.span.set_attribute("http.response.status_code", status)
        if plan is not None:
            self.span.set_attributes(plan.span_attributes())
        if err is not None:
            self.span.set_status(Status(StatusCode.ERROR, str(err)[:200]))
        self.span.end()

    def _decision(self, plan: Plan, status: int) -> DecisionRecord:
        u, d = self.usage or Usage(), plan.decision
        assert d is not None and self.ctx is not None
        return DecisionRecord(
            request_id=self.request_id, created_at=self.arrived, key_id=self.ctx.principal.key_id,
            router=self.ctx.steering.model, strategy=d.strategy, lam=d.lam, query=plan.query,
            candidates={**dict.fromkeys(plan.candidates), **d.scores}, chosen=plan.model, routed_to=d.model,
            route_latency_ms=d.latency_ms,
            latency_ms=(time.perf_counter() - self.started) * 1000,
            prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens, cost=u.cost, status=status,
            fallback=d.fallback, usage_estimated=u.estimated, propensity=d.propensity, explored=d.explored,
            policy=d.policy)


def _status_of(err: BaseException) -> int:
    if isinstance(err, asyncio.CancelledError):
        return CLIENT_CLOSED
    return int(getattr(err, "status", 500)) if isinstance(err, RouteIQError) else 500


async def _aclose(items: AsyncIterator[Any]) -> None:
    close = getattr(items, "aclose", None)
    if close is not None:
        await close()
