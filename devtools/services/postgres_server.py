"""A private Postgres cluster for one test session or one module: ``initdb`` in a temp dir.

The cluster listens on a free loopback port and a socket in its own folder, with trust
auth for the ``postgres`` role and durability off (``fsync``, ``synchronous_commit``,
``full_page_writes``; ``durable=True`` keeps them, for benchmarks): it is thrown away
at the end, so speed wins. ``stop()``, ``start()`` and ``restart()`` keep the port, for
the outage tests. It must never touch the machine's own cluster (no ``pg_ctlcluster``,
never port 5432).

Postgres refuses to run as root, so as root the server runs as an unprivileged system
user (Debian's ``postgres`` when it exists, else ``nobody``) that owns the temp dir;
otherwise it runs as the current user. No ``sudo``, no root needed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from devtools.ports import free_port
from devtools.services.common import START_TIMEOUT_S, ServiceBinaryMissingError, ServiceStartError, log_tail, wait_until

ROLE = "postgres"
SETTINGS = {"listen_addresses": "'127.0.0.1'", "max_connections": "200", "log_min_messages": "warning"}
FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
"""Durability off: a test server is thrown away, so speed wins (not for benchmarks)."""


def bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` (Debian), else where ``initdb`` is on PATH."""
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()]
    if found:
        return max(found, key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0))
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise ServiceBinaryMissingError("Postgres server binaries (initdb, pg_ctl) are not installed "
                                    "(Debian: apt install postgresql)")


def server_user() -> pwd.struct_passwd | None:
    """The account to run the server as when we are root (``None``: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServiceStartError("running as root and neither a 'postgres' nor a 'nobody' user exists")


class PostgresServer:
    """One throwaway cluster; ``url(db)``, ``create_database()`` and ``psql()`` reach it."""

    def __init__(self, durable: bool = False) -> None:
        self.port = 0
        self._durable = durable
        self.dir: Path | None = None
        self._bin = bin_dir()
        self._user = server_user()
        self._running = False
        atexit.register(self.close)

    @property
    def data(self) -> Path:
        assert self.dir is not None
        return self.dir / "data"

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{db}"

    def _run(self, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A server-side command (initdb, pg_ctl), as the server's user."""
        kw: dict[str, Any] = {}
        if self._user is not None:
            kw = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        return subprocess.run([str(self._bin / cmd[0]), *cmd[1:]], cwd=self.dir, capture_output=True, text=True,
                              timeout=timeout, check=False, stdin=subprocess.DEVNULL, **kw)

    def _init(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="routeiq-pg-"))
        if self._user is not None:
            os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)
        done = self._run("initdb", "-D", str(self.data), "-U", ROLE, "--auth=trust", "--no-sync", "-E", "UTF8",
                         "--locale=C")
        if done.returncode:
            raise ServiceStartError(f"initdb failed: {done.stderr.strip()[-2000:]}")
        # The socket lives with the data, not in /var/run/postgresql (the machine's cluster's).
        settings = {**SETTINGS, **({} if self._durable else FAST), "unix_socket_directories": f"'{self.dir}'"}
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write("\n# routeiq test server (devtools/services/postgres_server.py)\n")
            fh.writelines(f"{k} = {v}\n" for k, v in settings.items())

    def start(self) -> Self:
        if self.dir is None:
            self._init()
        if self.port:  # a restart: clients' URLs name this port
            self._start()
            return self
        # A fresh port can be taken between free_port() and the bind: try another one.
        for attempt in range(3):
            self.port = free_port()
            try:
                self._start()
                return self
            except ServiceStartError:
                if attempt == 2:
                    raise
        return self

    def _start(self) -> None:
        log = str(self.data.parent / "server.log")
        done = self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", f"-p {self.port}", "-w",
                         "-t", str(int(START_TIMEOUT_S)), "start", timeout=START_TIMEOUT_S + 30)
        if done.returncode:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            raise ServiceStartError(f"postgres on port {self.port} did not start: {done.stdout.strip()}\n"
                                    f"{log_tail(log)}")
        self._running = True
        wait_until(self.ready, START_TIMEOUT_S, f"postgres on port {self.port}")

    def ready(self) -> bool:
        """``pg_isready`` on the TCP port (what clients use)."""
        done = subprocess.run([str(self._bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-t", "5"],
                              capture_output=True, timeout=30, check=False)
        return done.returncode == 0

    def stop(self) -> None:
        """A fast shutdown (clients are disconnected, the port refuses); waits until it is down."""
        if not self._running:
            return
        done = self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "120", "stop", timeout=150)
        if done.returncode and (self.data / "postmaster.pid").exists():
            raise ServiceStartError(f"postgres on port {self.port} did not stop: {done.stderr.strip()}")
        self._running = False

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and remove the cluster's folder."""
        with contextlib.suppress(ServiceStartError, subprocess.TimeoutExpired):
            self.stop()
        if self.dir is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.dir)
            self.dir = None

    def replica(self) -> PostgresServer:
        """A streaming standby of this (running) server, started on a free port.

        ``pg_basebackup -R`` as the test role (initdb's pg_hba trusts replication from
        loopback; ``wal_level`` is ``replica`` by default); ``full_page_writes`` is turned on
        first, which a base backup needs. ``promote()`` makes it the primary."""
        self.psql("ALTER SYSTEM SET full_page_writes = on")
        self.psql("SELECT pg_reload_conf()")
        rep = PostgresServer(durable=self._durable)
        rep.dir = Path(tempfile.mkdtemp(prefix="routeiq-pg-replica-"))
        if rep._user is not None:
            os.chown(rep.dir, rep._user.pw_uid, rep._user.pw_gid)
        done = self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.port), "-U", ROLE, "-D", str(rep.data),
                         "-R", "-X", "stream", "-c", "fast", timeout=300)
        if done.returncode:
            rep.close()
            raise ServiceStartError(f"pg_basebackup failed: {done.stderr.strip()[-2000:]}")
        with open(rep.data / "postgresql.conf", "a") as fh:  # its own socket folder, not the primary's
            fh.write(f"unix_socket_directories = '{rep.dir}'\n")
        return rep.start()

    def in_recovery(self) -> bool:
        return self.psql("SELECT pg_is_in_recovery()").strip() == "t"

    def promote(self, timeout: float = 120) -> None:
        """Make this standby the primary; returns once it accepts writes."""
        done = self._run("pg_ctl", "-D", str(self.data), "-w", "-t", str(int(timeout)), "promote",
                         timeout=timeout + 30)
        if done.returncode:
            raise ServiceStartError(f"pg_ctl promote failed on port {self.port}: {done.stderr.strip()}")
        wait_until(lambda: not self.in_recovery(), timeout, f"postgres on port {self.port} promoted")

    def require_password(self, role: str) -> None:
        """Make ``role`` log in over TCP with its password (scram), as a production server
        would: the cluster trusts every role by default, so a rotated password would prove
        nothing. The rule goes first in ``pg_hba.conf`` and names only this role."""
        hba = self.data / "pg_hba.conf"
        rule = f"host all {role} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(rule + hba.read_text())
        self.psql("SELECT pg_reload_conf()")

    def psql(self, sql: str, db: str = "postgres") -> str:
        """Run SQL as the superuser over TCP; returns psql's unaligned output."""
        done = subprocess.run([str(self._bin / "psql"), "-X", "-w", "-h", "127.0.0.1", "-p", str(self.port),
                               "-U", ROLE, "-d", db, "-v", "ON_ERROR_STOP=1", "-qtAc", sql],
                              capture_output=True, text=True, timeout=120, check=False,
                              env={**os.environ, "PGCONNECT_TIMEOUT": "30"})
        if done.returncode:
            raise RuntimeError(f"psql failed on port {self.port}: {done.stderr.strip()}")
        return done.stdout

    def create_database(self, prefix: str = "routeiq_t") -> str:
        name = f"{prefix}_{secrets.token_hex(4)}"
        self.psql(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
