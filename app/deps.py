"""FastAPI dependency aliases: what a route may ask for, typed, in one place.

``GatewayDep`` (the replica's gateway), ``RequestIdDep`` (the request's id, also put
on ``request.state`` and in the log context), ``PrincipalDep`` (the authenticated
caller), ``Admin(action)`` (an admin request: the caller may act, every refusal
audited), ``PageDep`` and ``TimeRangeDep`` (query parameters shared by list routes).
Routes declare what they need; none reaches into ``app.state`` itself. Every dependency
is ``async``: FastAPI runs a plain ``def`` one in a worker thread, a thread hop per
request (it doubled the ingress's CPU per request) and a context variable set there
(the log context's request id) never reaches the request's task. Inference
routes take only ``GatewayDep``: their request is admitted (load shedding) before the
caller is authenticated, inside the request's ``Exchange``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError

from app.access.admin import AccessAdmin
from app.access.keys import utc
from app.access.policy import VirtualKeyPolicy
from app.auth import Principal, api_credential
from app.errors import InvalidRequestError, PermissionDeniedError, RouteIQError
from app.gateway import Gateway
from app.http import id_header, json_response, request_id

T = TypeVar("T")
MAX_PAGE = 1000
MAX_PAGE_NUMBER = 1_000_000
"""Pages past this are a 400: the SQL offset, (page - 1) * size, must stay a sane BIGINT."""
_TIME = TypeAdapter(datetime)


async def _gateway(request: Request) -> Gateway:
    gateway = request.app.state.gateway
    if not isinstance(gateway, Gateway):
        raise TypeError("app.state.gateway is not a Gateway (create_app sets it)")
    return gateway


GatewayDep = Annotated[Gateway, Depends(_gateway)]


async def _request_id(request: Request) -> str:
    return request_id(request)


RequestIdDep = Annotated[str, Depends(_request_id)]


async def _principal(request: Request, gateway: GatewayDep, _rid: RequestIdDep) -> Principal:
    """The authenticated caller, checked current on every replica (a key blocked or deleted
    anywhere is refused here at its next request, admin keys included)."""
    policy = gateway.policy
    return await policy.verify(await policy.authenticate(api_credential(request.headers)))


PrincipalDep = Annotated[Principal, Depends(_principal)]


@dataclass
class AdminCall:
    """An authenticated admin request: who, and the service to act with."""

    request: Request
    principal: Principal
    admin: AccessAdmin

    async def audited(self, action: str, target: str | None, op: Awaitable[T], detail: Any = None,
                      target_of: Callable[[T], str] | None = None) -> T:
        """Run ``op`` and record it in the audit log with its outcome."""
        try:
            result = await op
        except RouteIQError as err:
            await self.admin.store.audit(self.principal.key_id, action, target, err.code or err.type, detail)
            raise
        if target_of is not None:
            target = target_of(result)
        await self.admin.store.audit(self.principal.key_id, action, target, "success", detail)
        return result

    def reply(self, payload: Any) -> Response:
        return json_response(orjson.dumps(payload), id_header(self.request, {}))


def admin_call(action: str, *, admin_only: bool = True) -> Callable[..., Awaitable[AdminCall]]:
    """A dependency for an admin route: 401/403 (audited) unless the caller may act."""

    async def dependency(request: Request, gateway: GatewayDep, principal: PrincipalDep) -> AdminCall:
        policy = gateway.policy
        if not isinstance(policy, VirtualKeyPolicy):
            raise InvalidRequestError("virtual keys are disabled (general_settings.access.enabled: false)")
        if admin_only and not principal.is_admin:
            await policy.store.audit(principal.key_id, action, None, "denied")
            raise PermissionDeniedError("only the master key or an admin key may call the admin API",
                                        code="admin_only")
        return AdminCall(request, principal, AccessAdmin(policy))

    return dependency


def Admin(action: str, *, admin_only: bool = True) -> Any:
    """``call: Annotated[AdminCall, Admin("key.generate")]``: an admin route's caller.

    Declare it first among a route's parameters: dependencies resolve in order, and the
    caller must be authenticated before any query parameter is judged."""
    return Depends(admin_call(action, admin_only=admin_only))


@dataclass(frozen=True)
class Page:
    page: int
    size: int


async def _paging(request: Request) -> Page:
    try:
        page = max(1, int(request.query_params.get("page", 1)))
        size = min(MAX_PAGE, max(1, int(request.query_params.get("size", 100))))
    except ValueError:
        raise InvalidRequestError("page and size must be integers") from None
    if page > MAX_PAGE_NUMBER:
        raise InvalidRequestError(f"page must be at most {MAX_PAGE_NUMBER}", param="page")
    return Page(page, size)


PageDep = Annotated[Page, Depends(_paging)]


@dataclass(frozen=True)
class TimeRange:
    """``start``/``end`` query parameters (ISO 8601; ``end`` exclusive), UTC."""

    start: datetime | None
    end: datetime | None


async def _time_range(request: Request) -> TimeRange:
    out = []
    for name in ("start", "end"):
        raw = request.query_params.get(name)
        try:
            out.append(utc(_TIME.validate_python(raw)) if raw else None)
        except ValidationError:
            raise InvalidRequestError(f"{name}: expected an ISO 8601 time", param=name) from None
    return TimeRange(out[0], out[1])


TimeRangeDep = Annotated[TimeRange, Depends(_time_range)]


def litellm_date(request: Request, name: str, *, end_of_day: bool = False) -> datetime | None:
    """LiteLLM's ``start_date``/``end_date``: a day (``2024-01-31``, UTC) or an ISO 8601 time.
    A day as ``end_date`` includes that whole day (the bound is the next midnight, exclusive)."""
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw) if len(raw) == 10 else None
        if day is not None:
            return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1 if end_of_day else 0)
        return utc(_TIME.validate_python(raw))
    except (ValueError, ValidationError, OverflowError):
        raise InvalidRequestError(f"{name}: expected a date (YYYY-MM-DD) or an ISO 8601 time", param=name) from None
