"""Health probes: unauthenticated, and never showing secrets.

``/health/readiness`` is 200 ``ready``, 200 ``degraded`` (a dependency is down and
the replica serves under the degraded policy of docs/operations.md: it stays in
rotation), 503 ``starting`` (behind Serve: a downstream deployment does not answer
yet, e.g. the scorer still loading its artifact) or 503 ``draining`` (the replica is
shutting down). Its detail is built
from breaker states and exception type names only: no URL, key or error message. With an
``s3://`` router, ``router_sync`` says which versions the scorer replicas serve and how many
failed their last registry sync (the errors themselves: ``/router/info``, admin only); with a
config sync source, ``config_sync`` says ``degraded`` while syncing fails (the errors:
``/config/sync/status``).
``audit_export`` is ``degraded`` while export rounds fail (the rows wait in the spool and the
database; the replica stays in rotation), and ``credentials`` says, per rotated datastore
credential, ``ok`` or ``stale`` (a new value was refused: the old one still serves).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.deps import GatewayDep
from app.gateway import Gateway
from app.http import json_response

router = APIRouter()


@router.get("/health/liveliness")
async def liveliness() -> Response:
    """The process is up."""
    return json_response(b'{"status":"ok"}', {})


async def readiness_report(gateway: Gateway) -> dict[str, Any]:
    """``ready``, or ``degraded`` with the state of each dependency (a dependency ``down``, or the
    audit export or config sync ``degraded``)."""
    detail = await gateway.health()
    # A failing config sync reads "degraded": the running config keeps serving (docs/operations.md).
    down = any(isinstance(v, dict) and v.get("status") in ("down", "degraded") for v in detail.values())
    return {"status": "degraded" if down else "ready", **detail}


@router.get("/health/readiness")
async def readiness(request: Request, gateway: GatewayDep) -> Response:
    """Ready to serve: 200 with detail, or 503 while draining or not ready."""
    if request.app.state.draining:
        report: dict[str, Any] = {"status": "draining"}
    else:
        checks = request.app.state.readiness
        server = request.scope.get("server")  # the socket this probe came in on
        report = await checks(server) if checks else await readiness_report(gateway)
    status = 200 if report.get("status") in ("ready", "degraded") else 503
    return json_response(orjson.dumps(report), {}, status)
