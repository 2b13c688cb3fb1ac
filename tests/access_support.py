"""Real Redis and Postgres for the access tests: one database and one key prefix each.

Every test session gets its own Postgres database (``routeiq_t_<hex>``, dropped at the
end) and Redis DB 9 with a unique key prefix, so parallel sessions and other suites
never see each other's keys, limits or rows.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from typing import Any

import pytest

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS_DB = 9


def _up(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def require_services() -> None:
    """Fail in CI, skip elsewhere, when Redis or Postgres is not running."""
    missing = [n for n, p in (("redis", 6379), ("postgres", 5432)) if not _up(p)]
    if missing:
        msg = f"{' and '.join(missing)} not running (scripts/services.sh starts them)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def psql(sql: str, db: str = "postgres") -> None:
    subprocess.run(["psql", "-h", PG["host"], "-U", PG["user"], "-d", db, "-qtAc", sql],
                   check=True, capture_output=True, timeout=30)


def create_database() -> str:
    name = f"routeiq_t_{secrets.token_hex(4)}"
    psql(f"CREATE DATABASE {name}")
    return name


def drop_database(name: str) -> None:
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def pg_url(db: str) -> str:
    return f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{db}"


def redis_url() -> str:
    return f"redis://127.0.0.1:6379/{REDIS_DB}"


def access_general(backend: str, db: str | None, tmp: str, **access: Any) -> dict[str, Any]:
    """``general_settings`` for a backend: ``real`` (Postgres + Redis) or ``embedded``."""
    settings = {"redis_prefix": f"rqt-{secrets.token_hex(4)}", "sqlite_path": f"{tmp}/routeiq.db",
                "spend_flush_interval_s": 0.2, **access}
    general: dict[str, Any] = {"access": settings}
    if backend == "real":
        assert db is not None
        general |= {"database_url": pg_url(db), "redis_url": redis_url()}
    return general


def pg_ctl(action: str) -> None:
    """Stop or start the local Postgres cluster (tests of outages)."""
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
                   check=True, capture_output=True, timeout=60)
