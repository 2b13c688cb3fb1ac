"""``/ui``: the console's HTML pages, sign-in/out and its static files.

Pages are server-rendered shells (``templates/``: semantic HTML, a form per action, a
table per list) that ``static/console.js`` fills from ``/ui/api``; ``layout.html`` wraps
each one, and a fragment two pages share (the time-range toolbar) is a template of its own
(``PARTIALS``). The session's CSRF token is in each page's ``<meta>``; no inline script
runs (the Content-Security-Policy allows only this origin's files), so nothing from a
page's data can execute. Static files are
read from the package once and served with their sha256 as ETag: air-gapped, no CDN.
"""

from __future__ import annotations

import hashlib
import html
from functools import cache
from importlib import resources
from string import Template
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.console.operator import Operator, current, sign_in
from app.console.session import COOKIE, SESSION_TTL_S
from app.deps import GatewayDep
from app.errors import NotFoundError, RouteIQError
from app.http import read_body

router = APIRouter(prefix="/ui")
PAGES = {"overview": "Overview", "routing": "Routing", "keys": "Keys & teams", "spend": "Spend", "health": "Health"}
STATIC = {"console.js": "text/javascript", "console.css": "text/css",
          "vendor/uPlot.iife.min.js": "text/javascript", "vendor/uPlot.min.css": "text/css"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
PARTIALS = ("time_range",)
"""Shared fragments a page's template names as ``$time_range``: written once, like ``layout.html``."""
_HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
            "cache-control": "no-store"}


@cache
def _file(name: str) -> bytes:
    """A packaged file (templates, static), read once per replica."""
    return resources.files("app.console").joinpath(name).read_bytes()


def _page(name: str, title: str, op: Operator | None, status: int = 200, **extra: str) -> Response:
    nav = "".join(f'<li><a href="/ui/{slug}"{" aria-current=page" if slug == name else ""}>{label}</a></li>'
                  for slug, label in PAGES.items()) if op else ""
    partials = {part: _file(f"templates/{part}.html").decode() for part in PARTIALS}
    body = Template(_file(f"templates/{name}.html").decode()).safe_substitute(**partials, **extra)
    page = Template(_file("templates/layout.html").decode()).safe_substitute(
        title=html.escape(title), nav=nav, main=body, page=name, csrf=op.csrf if op else "",
        who=html.escape(op.principal.key_id) if op else "", signed_in="true" if op else "false")
    return Response(page, status_code=status, media_type="text/html", headers=_HEADERS)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


@router.get("")
@router.get("/")
async def home() -> Response:
    return RedirectResponse("/ui/overview", status_code=303)


@router.get("/login")
async def login_form() -> Response:
    return _page("login", "Sign in", None, error="")


@router.post("/login")
async def login(request: Request, gateway: GatewayDep) -> Response:
    """Form POST (``key=…``): the session cookie and a redirect, or the form again with why not."""
    form = parse_qs((await read_body(request, 8192)).decode(errors="replace"))
    key = (form.get("key") or [""])[0]
    try:
        op = await sign_in(gateway, key)
    except RouteIQError as err:
        message = f'<p class="error" role="alert">{html.escape(err.message)}</p>'
        return _page("login", "Sign in", None, status=err.status, error=message)
    response = RedirectResponse("/ui/overview", status_code=303)
    response.set_cookie(COOKIE, op.token, max_age=SESSION_TTL_S, path="/ui", httponly=True, samesite="strict",
                        secure=_secure(request))
    return response


@router.post("/logout")
async def logout(request: Request, gateway: GatewayDep) -> Response:
    """Needs the CSRF token (header or form field ``csrf``): a forged logout is refused too."""
    form = parse_qs((await read_body(request, 8192)).decode(errors="replace"))
    await current(gateway, request, mutating=True, csrf=next(iter(form.get("csrf") or []), None))
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict", secure=_secure(request))
    return response


@router.get("/static/{name:path}")
async def static(name: str, request: Request) -> Response:
    if name not in STATIC:
        raise NotFoundError(f"Unknown path {request.url.path}", code="not_found")
    data = _file(f"static/{name}")
    etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
    headers = {"etag": etag, "cache-control": "public, max-age=3600", "x-content-type-options": "nosniff"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=STATIC[name], headers=headers)


@router.get("/{name}")
async def page(name: str, request: Request, gateway: GatewayDep) -> Response:
    if name not in PAGES:
        raise NotFoundError(f"Unknown path {request.url.path}", code="not_found")
    try:
        op = await current(gateway, request, mutating=False)
    except RouteIQError as err:
        if err.status == 401:
            return RedirectResponse("/ui/login", status_code=303)
        raise
    return _page(name, PAGES[name], op)
