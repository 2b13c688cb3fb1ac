"""Health probes: unauthenticated, and never showing secrets."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.http import json_response

router = APIRouter()


@router.get("/health/liveliness")
async def liveliness() -> Response:
    """The process is up."""
    return json_response(b'{"status":"ok"}', {})


@router.get("/health/readiness")
async def readiness(request: Request) -> Response:
    """Ready to serve: 200 with detail, or 503 while draining or not ready."""
    checks = request.app.state.readiness
    report = await checks() if checks else {"status": "ready"}
    status = 200 if report.get("status") in ("ready", "degraded") else 503
    return json_response(orjson.dumps(report), {}, status)
