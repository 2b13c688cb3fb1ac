"""Where the gateway may connect: upstream URLs come only from config, and are checked.

Every ``api_base`` is validated when the config loads (``url_problem``: http or https, a
host, no credentials in the URL: those belong in ``api_key`` or a mounted secret). With
``general_settings.block_private_upstreams``, addresses that are not globally routable
(private, loopback, link-local, the cloud metadata address, shared and reserved ranges)
are refused three times over: literal IPs when the config loads, host names when the
graph is built (``resolve_problems``), and, for the native pass-through, again at every
connection (``openai_native.GuardedResolver``), so a name that later resolves elsewhere (DNS
rebinding) is still refused. The litellm transport connects through its own HTTP
clients, which have no such hook: its names are checked at start only (docs/security.md).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit


def url_problem(url: str) -> str | None:
    """Why ``url`` may not be an upstream base URL, or ``None``."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError as err:
        return f"not a valid URL ({err})"
    if parts.scheme not in ("http", "https"):
        return f"scheme must be http or https, not {parts.scheme or 'none'!r}"
    if not parts.hostname:
        return "has no host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (use api_key, os.environ/NAME or file:/path)"
    return None


def is_public(address: str) -> bool:
    """Whether an IP address is globally routable (not private, loopback, link-local...)."""
    return ipaddress.ip_address(address.split("%", 1)[0]).is_global


def literal_ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def private_literal(url: str) -> str | None:
    """The URL's host when it is a literal IP that is not public, else ``None``."""
    host = urlsplit(url).hostname or ""
    ip = literal_ip(host)
    return ip if ip is not None and not is_public(ip) else None


def resolve_problems(urls: Iterable[str]) -> list[str]:
    """``url: resolves to a private address`` for each host name that does (blocking DNS)."""
    problems = []
    for url in urls:
        host = urlsplit(url).hostname or ""
        if literal_ip(host) is not None:
            continue  # checked when the config loaded
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except OSError as err:
            problems.append(f"{url}: cannot resolve {host!r} ({err.strerror or err})")
            continue
        private = sorted({str(i[4][0]) for i in infos if not is_public(str(i[4][0]))})
        if private:
            problems.append(f"{url}: {host!r} resolves to a non-public address ({', '.join(private)})")
    return problems
