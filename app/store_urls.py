"""Datastore URLs: the forms ``redis_url`` accepts, checked once, and the one Redis client
builder; and Postgres URLs with several hosts (``pg_multi_host``), for a failover pair.

The replica's wiring (``app.access.db.build_redis``) builds its Redis client here, and
``app.config`` checks a literal ``redis_url`` with ``parse_redis_url`` (and a literal
``database_url`` with ``check_database_url``) when the config is loaded, so a typo fails
at start-up naming the field, not at the first request.

Forms (docs/configuration.md):

- ``redis://[user:pw@]host:port[/db]``, ``rediss://`` (TLS): one server (redis-py's
  ``from_url``, every query option it knows);
- ``redis+cluster://[user:pw@]host:port[,host:port...]`` (``rediss+cluster://``: TLS):
  a Redis Cluster reached through these startup nodes (db 0 only);
- ``redis+sentinel://[user:pw@]host:port[,host:port...]/service[/db]``
  (``rediss+sentinel://``: TLS): the master Sentinel names ``service``; the credentials
  are the master's, ``?sentinel_password=`` the Sentinels' own, when they have one.

Every client keeps the keys of one script under one hash tag (``{...}``: see
``app.access.policy.scope_keys`` and ``app.gateway.cooldowns``), so the same scripts
run on a cluster. Must not: connect (the first command does), or import redis at
module import (``app.config`` imports this module).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

Kind = Literal["single", "cluster", "sentinel"]
SCHEMES: dict[str, tuple[Kind, bool]] = {
    "redis": ("single", False), "rediss": ("single", True), "unix": ("single", False),
    "redis+cluster": ("cluster", False), "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False), "rediss+sentinel": ("sentinel", True),
}
DEFAULT_PORT = {"single": 6379, "cluster": 6379, "sentinel": 26379}


class RedisUrlError(ValueError):
    """A ``redis_url`` none of the forms accept; the message says what is wrong."""


@dataclass(frozen=True)
class RedisTarget:
    """What a ``redis_url`` names (no secret in ``repr``: the password is left out)."""

    kind: Kind
    url: str
    """The URL as given (``single``: handed to redis-py as is)."""
    nodes: tuple[tuple[str, int], ...] = ()
    """Startup nodes (cluster) or Sentinels (sentinel)."""
    service: str | None = None
    db: int = 0
    ssl: bool = False

    def __repr__(self) -> str:
        return f"RedisTarget(kind={self.kind!r}, nodes={self.nodes!r}, service={self.service!r}, db={self.db})"


def _hosts(netloc: str, kind: Kind) -> tuple[tuple[str, int], ...]:
    hosts = netloc.rpartition("@")[2]
    out = []
    for part in hosts.split(","):
        if not part:
            raise RedisUrlError(f"an empty host in {hosts!r} (host:port[,host:port...])")
        host, port = part, str(DEFAULT_PORT[kind])
        if part.startswith("["):  # [IPv6]:port
            host, _, rest = part[1:].partition("]")
            if rest:
                port = rest.removeprefix(":")
        elif ":" in part:
            host, _, port = part.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise RedisUrlError(f"bad host:port {part!r}")
        out.append((host, int(port)))
    return tuple(out)


def parse_redis_url(url: str) -> RedisTarget:
    """The target of ``url``; ``RedisUrlError`` says why one is refused."""
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise RedisUrlError(f"unsupported scheme {scheme if sep else url[:16]!r}: use redis://, rediss://, "
                            "redis+cluster://host:port[,host:port...] or "
                            "redis+sentinel://host:port[,host:port...]/service[/db]")
    kind, ssl = SCHEMES[scheme.lower()]
    if kind == "single":
        return RedisTarget("single", url, ssl=ssl)
    parts = urlsplit(url)
    nodes = _hosts(parts.netloc, kind)
    path = [p for p in parts.path.split("/") if p]
    if kind == "cluster":
        if path not in ([], ["0"]):
            raise RedisUrlError("a Redis Cluster has only db 0: no path after the hosts")
        return RedisTarget("cluster", url, nodes, ssl=ssl)
    if not path or len(path) > 2:
        raise RedisUrlError("name the Sentinel service: redis+sentinel://host:port[,host:port...]/service[/db]")
    if len(path) == 2 and not path[1].isdigit():
        raise RedisUrlError(f"the db after the service must be a number, not {path[1]!r}")
    return RedisTarget("sentinel", url, nodes, service=unquote(path[0]), db=int(path[1]) if len(path) == 2 else 0,
                       ssl=ssl)


class DatabaseUrlError(ValueError):
    """A ``database_url`` RouteIQ cannot use; the message says what is wrong."""


DATABASE_SCHEMES = ("postgresql", "postgres", "sqlite")


def check_database_url(url: str) -> str:
    """``url`` when it is a Postgres URL (one host or several, ``host:port`` each) or a
    SQLite one; ``DatabaseUrlError`` says why not (checked at config load: a typo fails at
    start-up naming the field, not when the first spend row is written)."""
    scheme, sep, rest = url.partition("://")
    base = scheme.lower().partition("+")[0]
    if not sep or base not in DATABASE_SCHEMES:
        raise DatabaseUrlError(f"unsupported scheme {scheme if sep else url[:16]!r}: use postgresql:// "
                               "(several hosts: postgresql://user@h1:5432,h2:5432/db) or sqlite:///path")
    if base == "sqlite":
        return url
    hosts = rest.partition("/")[0].partition("?")[0].rpartition("@")[2]
    if hosts:  # empty: a Unix socket or ?host= in the query
        for part in hosts.split(","):
            host, port = part, ""
            if part.startswith("["):  # [IPv6]:port
                host, _, tail = part[1:].partition("]")
                port = tail.removeprefix(":")
            elif ":" in part:
                host, _, port = part.rpartition(":")
            if not host or (port and not (port.isdigit() and 0 < int(port) < 65536)):
                raise DatabaseUrlError(f"bad host:port {part!r} (host:port[,host:port...])")
    return url


def pg_multi_host(url: str) -> str:
    """``postgresql://u@h1:p1,h2:p2/db?...`` → ``postgresql://u@/db?host=h1:p1&host=h2:p2&...``:
    the form SQLAlchemy parses (it cannot read several hosts in the netloc) and hands to
    asyncpg as its lists of hosts and ports. A URL with one host is returned as is."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not sep or "," not in hosts:
        return url
    path, q, query = tail.partition("?")
    extra = "&".join(f"host={h}" for h in hosts.split(",") if h)
    return f"{scheme}://{userinfo}{at}{slash or '/'}{path}?{extra}{'&' + query if q and query else ''}"


def _credentials(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    if not userinfo:
        return {}
    user, _, password = userinfo.partition(":")
    return {"username": unquote(user) or None, "password": unquote(password) or None}


def build_redis_client(url: str, *, pool_size: int, timeout_s: float) -> Any:
    """The replica's client for ``url``: ``redis.asyncio.Redis`` (one server, or the master
    Sentinel names) or ``RedisCluster``, with ``pool_size`` connections (per node)."""
    import redis.asyncio as aioredis

    target = parse_redis_url(url)
    common: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s,
                              "health_check_interval": 30}
    if target.kind == "single":
        return aioredis.from_url(url, max_connections=pool_size, **common)
    creds = _credentials(url)
    if target.kind == "cluster":
        from redis.asyncio.cluster import ClusterNode

        return _cluster_class()(startup_nodes=[ClusterNode(h, p) for h, p in target.nodes], max_connections=pool_size,
                            ssl=target.ssl, **creds, **common)
    from redis.asyncio.sentinel import Sentinel

    query = parse_qs(urlsplit(url).query)
    sentinel_kw: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s,
                                   "ssl": target.ssl}
    if query.get("sentinel_password"):
        sentinel_kw["password"] = query["sentinel_password"][0]
    sentinel = Sentinel(list(target.nodes), sentinel_kwargs=sentinel_kw)  # type: ignore[no-untyped-call]
    assert target.service is not None
    client = sentinel.master_for(target.service, redis_class=_sentinel_redis_class(), db=target.db,
                                 max_connections=pool_size, ssl=target.ssl, **creds, **common)
    client.sentinel_manager = sentinel
    return client


def _cluster_class() -> type[Any]:
    """``RedisCluster`` that reads the slot map before its first command runs.

    redis-py 8.1's cluster client, given many concurrent commands before it has read the
    slot map (a replica's first burst of requests), fails some of them on a connection
    closed under them (``AttributeError`` on its writer: seen with 20 concurrent
    ``EVALSHA``); one ``initialize()`` first, behind a lock, avoids it."""
    import asyncio

    from redis.asyncio.cluster import RedisCluster

    class InitializedRedisCluster(RedisCluster):
        _first_lock: asyncio.Lock | None = None

        async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
            if self._initialize:
                self._first_lock = self._first_lock or asyncio.Lock()
                async with self._first_lock:
                    await self.initialize()
            return await super().execute_command(*args, **kwargs)

    return InitializedRedisCluster


def _sentinel_redis_class() -> type[Any]:
    """``Redis`` whose ``aclose`` also closes its Sentinels' connections."""
    import redis.asyncio as aioredis

    class SentinelRedis(aioredis.Redis):
        sentinel_manager: Any = None

        async def aclose(self, close_connection_pool: bool | None = None) -> None:
            await super().aclose(close_connection_pool)
            for s in getattr(self.sentinel_manager, "sentinels", ()):
                await s.aclose()

    return SentinelRedis


async def drop_connections(client: Any) -> None:
    """Close the client's pooled connections (after an outage they may all be dead); the
    next command opens new ones (a cluster client also re-reads the slot map)."""
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        await pool.disconnect()
        return
    for node in client.get_nodes():
        await node.disconnect()
