"""``redis_url``'s forms: parsing, the errors config load reports, and the clients built."""

from __future__ import annotations

import copy

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from app.access.db import async_db_url, build_redis
from app.config import ConfigError, parse_config
from app.store_urls import (
    DatabaseUrlError,
    RedisTarget,
    RedisUrlError,
    build_redis_client,
    check_database_url,
    parse_redis_url,
    pg_multi_host,
)
from devtools.configs import gateway_config


@pytest.mark.parametrize(("url", "target"), [
    ("redis://:pw@cache:6380/2", RedisTarget("single", "redis://:pw@cache:6380/2")),
    ("rediss://cache", RedisTarget("single", "rediss://cache", ssl=True)),
    ("redis+cluster://a:7000,b:7001,c", RedisTarget("cluster", "redis+cluster://a:7000,b:7001,c",
                                                    (("a", 7000), ("b", 7001), ("c", 6379)))),
    ("rediss+cluster://u:p@[::1]:7000/", RedisTarget("cluster", "rediss+cluster://u:p@[::1]:7000/",
                                                     (("::1", 7000),), ssl=True)),
    ("redis+sentinel://s1:26379,s2/mymaster", RedisTarget("sentinel", "redis+sentinel://s1:26379,s2/mymaster",
                                                          (("s1", 26379), ("s2", 26379)), "mymaster")),
    ("redis+sentinel://:pw@s1:5000/mymaster/3", RedisTarget("sentinel", "redis+sentinel://:pw@s1:5000/mymaster/3",
                                                            (("s1", 5000),), "mymaster", 3)),
])
def test_every_form_parses(url: str, target: RedisTarget) -> None:
    assert parse_redis_url(url) == target


@pytest.mark.parametrize(("url", "why"), [
    ("http://cache:6379", "unsupported scheme 'http'"),
    ("cache:6379", "unsupported scheme"),
    ("redis+cluster://a:7000,,b:7001", "an empty host"),
    ("redis+cluster://a:notaport", "bad host:port 'a:notaport'"),
    ("redis+cluster://a:7000/1", "only db 0"),
    ("redis+sentinel://s1:26379", "name the Sentinel service"),
    ("redis+sentinel://s1:26379/mymaster/x", "must be a number"),
    ("redis+sentinel://s1:99999/mymaster", "bad host:port"),
])
def test_bad_urls_say_why(url: str, why: str) -> None:
    with pytest.raises(RedisUrlError, match=why.replace("(", r"\(")):
        parse_redis_url(url)


def test_the_password_never_shows_in_repr() -> None:
    assert "pw" not in repr(parse_redis_url("redis+sentinel://:pw@s1/m"))


def test_config_load_names_the_field() -> None:
    raw = copy.deepcopy(gateway_config("http://127.0.0.1:1/v1"))
    raw["general_settings"]["redis_url"] = "redis+cluster://a:7000/4"
    with pytest.raises(ConfigError, match=r"general_settings\.redis_url: .*only db 0"):
        parse_config(raw)


def test_a_url_from_the_environment_is_checked_when_the_client_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEIQ_TEST_REDIS", "memcached://x")
    raw = copy.deepcopy(gateway_config("http://127.0.0.1:1/v1"))
    raw["general_settings"]["redis_url"] = "os.environ/ROUTEIQ_TEST_REDIS"
    cfg = parse_config(raw)
    with pytest.raises(ConfigError, match=r"general_settings\.redis_url: unsupported scheme 'memcached'"):
        build_redis(cfg.general_settings)


async def test_each_form_builds_its_client_without_connecting() -> None:
    single = build_redis_client("redis://127.0.0.1:1/0", pool_size=3, timeout_s=0.5)
    cluster = build_redis_client("redis+cluster://127.0.0.1:1,127.0.0.1:2", pool_size=3, timeout_s=0.5)
    sentinel = build_redis_client("redis+sentinel://:pw@127.0.0.1:1/svc/2?sentinel_password=s", pool_size=3,
                                  timeout_s=0.5)
    assert isinstance(single, Redis) and isinstance(cluster, RedisCluster) and isinstance(sentinel, Redis)
    assert [(n.host, n.port) for n in cluster.startup_nodes] == [("127.0.0.1", 1), ("127.0.0.1", 2)]
    kw = sentinel.connection_pool.connection_kwargs
    assert (kw["db"], kw["password"], sentinel.connection_pool.service_name) == (2, "pw", "svc")
    assert sentinel.sentinel_manager.sentinels[0].connection_pool.connection_kwargs["password"] == "s"
    for client in (single, cluster, sentinel):
        await client.aclose()


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://u:pw@h1:5432,h2:5433/db?target_session_attrs=read-write",
     "postgresql://u:pw@/db?host=h1:5432&host=h2:5433&target_session_attrs=read-write"),
    ("postgresql://u@h1,h2/db", "postgresql://u@/db?host=h1&host=h2"),
    ("postgresql://u@h1:5432/db?sslmode=require", "postgresql://u@h1:5432/db?sslmode=require"),
])
def test_several_postgres_hosts_become_the_host_list_sqlalchemy_reads(url: str, expected: str) -> None:
    assert pg_multi_host(url) == expected


def test_asyncpg_gets_every_host_and_the_session_attrs() -> None:
    from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
    from sqlalchemy.engine import make_url

    url = async_db_url("postgresql://u:pw@h1:5432,h2:5433/db?target_session_attrs=read-write&sslmode=require")
    _, kw = PGDialect_asyncpg().create_connect_args(make_url(url))
    assert (kw["host"], kw["port"], kw["target_session_attrs"], kw["ssl"]) == (
        ["h1", "h2"], [5432, 5433], "read-write", "require")


@pytest.mark.parametrize("url", [
    "postgresql://u:pw@h:5432/db", "postgres://h/db", "postgresql+asyncpg://u@h1:5432,h2/db?target_session_attrs=read-write",
    "postgresql://u@[::1]:5432,[fd00::2]:5433/db", "postgresql:///db?host=/var/run/postgresql", "sqlite:////tmp/x.db",
])
def test_database_urls_that_serve(url: str) -> None:
    assert check_database_url(url) == url


@pytest.mark.parametrize(("url", "why"), [
    ("mysql://h/db", "unsupported scheme 'mysql'"),
    ("h:5432/db", "unsupported scheme"),
    ("postgresql://u@h1:5432,,h2:5432/db", "bad host:port ''"),
    ("postgresql://u@h1:54x2/db", "bad host:port 'h1:54x2'"),
    ("postgresql://u@h1:70000/db", "bad host:port"),
])
def test_bad_database_urls_say_why(url: str, why: str) -> None:
    with pytest.raises(DatabaseUrlError, match=why):
        check_database_url(url)


def test_a_bad_database_url_fails_config_load_naming_the_field() -> None:
    raw = copy.deepcopy(gateway_config("http://127.0.0.1:1/v1"))
    raw["general_settings"]["database_url"] = "postgresql://u@db1:5432,db2:54x2/routeiq"
    with pytest.raises(ConfigError, match=r"general_settings\.database_url: .*bad host:port 'db2:54x2'"):
        parse_config(raw)


def test_a_database_url_from_the_environment_is_checked_when_the_engine_is_built() -> None:
    with pytest.raises(ConfigError, match=r"general_settings\.database_url: unsupported scheme 'mysql'"):
        async_db_url("mysql://h/db")
