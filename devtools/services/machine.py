"""The machine's own Redis (6379) and Postgres (5432), read but never touched.

A test session records who those servers are when it starts (Redis' ``run_id`` from
``INFO server``, Postgres' ``pg_postmaster_start_time()``) and compares at the end: a
difference means one was restarted while the suite ran. These are read-only calls; this
module must never write to, flush, stop or start those servers. A server that needs a
password is reported as not checked instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field

REDIS_PORT, POSTGRES_PORT = 6379, 5432


@dataclass(frozen=True)
class MachineServices:
    """Identity of each server (``None``: nothing listens), and why one could not be checked."""

    redis: str | None
    postgres: str | None
    unchecked: dict[str, str] = field(default_factory=dict)

    def changes(self, later: MachineServices) -> list[str]:
        """What differs in ``later`` for a server that was up and checked here."""
        out = []
        for name, before, after in (("redis", self.redis, later.redis), ("postgres", self.postgres, later.postgres)):
            if before is not None and name not in self.unchecked and before != after:
                out.append(f"the machine's {name} changed during the session: {before!r} -> {after!r} "
                           "(restarted or stopped; this suite never touches it, look for another process)")
        return out


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def redis_run_id(port: int = REDIS_PORT) -> str:
    """``run_id`` from ``INFO server`` (a raw, read-only RESP call)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"INFO server\r\n")
        data = b""
        while b"run_id:" not in data or not data.endswith(b"\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("run_id:"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError(data.decode(errors="replace").strip()[:200] or "no reply")


def postgres_start_time(port: int = POSTGRES_PORT) -> str:
    """``pg_postmaster_start_time()`` as the ``postgres`` role, never prompting for a password."""
    psql = shutil.which("psql")
    if psql is None:
        raise RuntimeError("psql is not installed")
    done = subprocess.run([psql, "-X", "-w", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres",
                           "-tAc", "SELECT pg_postmaster_start_time()"],
                          capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, "PGCONNECT_TIMEOUT": "10"})
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "psql failed")
    return done.stdout.strip()


def machine_services() -> MachineServices:
    """Who listens on 6379 and 5432 now (read-only)."""
    ids: dict[str, str | None] = {}
    unchecked: dict[str, str] = {}
    for name, port, ident in (("redis", REDIS_PORT, redis_run_id), ("postgres", POSTGRES_PORT, postgres_start_time)):
        ids[name] = None
        if not _listening(port):
            continue
        try:
            ids[name] = ident(port)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as err:
            ids[name] = "unknown"
            unchecked[name] = str(err)
    return MachineServices(ids["redis"], ids["postgres"], unchecked)
