"""Private Redis and Postgres: free ports, restarts on the same port, never as root, cleaned up."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from devtools.services import PostgresServer, RedisClusterServer, RedisSentinelServer, RedisServer
from devtools.services.machine import POSTGRES_PORT, REDIS_PORT
from devtools.services.redis_server import ping
from tests.access_support import start_service


def _send(port: int, command: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(command)
        return s.recv(1024)


def test_redis_restarts_on_its_port_with_nothing_kept() -> None:
    server = start_service(RedisServer)
    try:
        assert server.port not in (REDIS_PORT, 0) and server.url().endswith(f":{server.port}/0")
        assert _send(server.port, b"SET k v\r\n").startswith(b"+OK")
        server.stop()
        assert not ping(server.port)
        server.start()
        assert _send(server.port, b"GET k\r\n").startswith(b"$-1")  # no persistence
    finally:
        folder = server.dir
        server.close()
    assert folder is not None and not folder.exists()


def test_postgres_stops_and_starts_on_its_port_and_never_runs_as_root() -> None:
    server = start_service(PostgresServer)
    try:
        assert server.port not in (POSTGRES_PORT, 0)
        db = server.create_database()
        server.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1)", db)
        pid = int((server.data / "postmaster.pid").read_text().split()[0])
        assert os.stat(f"/proc/{pid}").st_uid != 0
        server.stop()
        assert not server.ready()
        server.restart()
        assert server.psql("SELECT x FROM t", db).strip() == "1"
        server.drop_database(db)
    finally:
        folder = server.dir
        server.close()
    assert isinstance(folder, Path) and not folder.exists()


def test_session_servers_are_not_the_machines(redis_server: RedisServer, postgres_server: PostgresServer) -> None:
    assert redis_server.port != REDIS_PORT and postgres_server.port != POSTGRES_PORT
    assert ping(redis_server.port) and postgres_server.ready()


@pytest.mark.parametrize("make", [RedisServer, PostgresServer])
def test_close_is_idempotent(make: type[RedisServer] | type[PostgresServer]) -> None:
    server = start_service(make)
    server.close()
    server.close()


def test_a_cluster_covers_every_slot_and_a_sentinel_names_its_master(
        redis_cluster: RedisClusterServer, redis_sentinel: RedisSentinelServer) -> None:
    from devtools.services.redis_topologies import SERVICE, cli

    assert all("cluster_slots_assigned:16384" in cli(p, "cluster", "info") for p in redis_cluster.ports)
    assert len(set(redis_cluster.ports)) == 3 and REDIS_PORT not in redis_cluster.ports
    assert str(redis_sentinel.master.port) in cli(redis_sentinel.port, "sentinel", "get-master-addr-by-name", SERVICE)


def test_a_replica_follows_its_primary_and_is_promoted() -> None:
    primary = start_service(PostgresServer)
    try:
        db = primary.create_database()
        primary.psql("CREATE TABLE t (x int PRIMARY KEY); INSERT INTO t VALUES (1)", db)
        standby = primary.replica()
        try:
            assert standby.in_recovery() and standby.port not in (primary.port, POSTGRES_PORT)
            primary.psql("INSERT INTO t VALUES (2)", db)
            primary.stop()  # a fast shutdown sends the standby everything committed first
            standby.promote()
            standby.psql("INSERT INTO t VALUES (3)", db)
            assert standby.psql("SELECT count(*) FROM t", db).strip() == "3"
        finally:
            standby.close()
    finally:
        primary.close()
