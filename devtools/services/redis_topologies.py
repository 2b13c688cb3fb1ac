"""A private Redis Cluster and a private Sentinel setup, for the tests of ``redis_url``'s forms.

``RedisClusterServer``: three masters (``--cluster-enabled yes``, no replicas) on free
loopback ports, their cluster bus on free ports too, joined with
``redis-cli --cluster create``; ready when every node's ``CLUSTER INFO`` says
``cluster_state:ok``. ``RedisSentinelServer``: one master (a ``RedisServer``) and one
``redis-server --sentinel`` monitoring it with quorum 1. Both persist nothing, live in a
temporary folder and must never be pointed at the machine's own Redis (6379).
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from devtools.ports import free_port
from devtools.services.common import START_TIMEOUT_S, ServiceBinaryMissingError, ServiceStartError, log_tail, wait_until
from devtools.services.redis_server import RedisServer, ping

SERVICE = "routeiq-master"
"""The name the Sentinel monitors the master under (the URL's service)."""


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ServiceBinaryMissingError(f"{name} is not installed (Debian: apt install redis-server redis-tools)")
    return found


def cli(port: int, *args: str, timeout: float = 30) -> str:
    """``redis-cli -p port args...``'s output ('' when it fails)."""
    done = subprocess.run([_binary("redis-cli"), "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True,
                          text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    return done.stdout if done.returncode == 0 else ""


class _Processes:
    """Child ``redis-server`` processes in one temporary folder."""

    def __init__(self, prefix: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.procs: list[subprocess.Popen[bytes]] = []
        atexit.register(self.close)

    def spawn(self, args: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([_binary("redis-server"), *args], cwd=self.dir, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        try:
            wait_until(lambda: ping(port), START_TIMEOUT_S, f"redis on port {port}",
                       failed=lambda: proc.poll() is not None)
        except ServiceStartError as err:
            raise ServiceStartError(f"{err}\n{log_tail(str(log))}") from None
        return proc

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
        self.procs = []
        with contextlib.suppress(OSError):
            shutil.rmtree(self.dir)


class RedisClusterServer:
    """Three masters joined into one cluster; ``url()`` is its ``redis+cluster://`` URL."""

    def __init__(self, masters: int = 3) -> None:
        self.masters = masters
        self.ports: list[int] = []
        self._procs: _Processes | None = None

    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self) -> Self:
        self._procs = _Processes("routeiq-redis-cluster-")
        _binary("redis-cli")
        for i in range(self.masters):
            port, bus = free_port(), free_port()
            node = self._procs.dir / f"node{i}"
            node.mkdir()
            log = node / "redis.log"
            self._procs.spawn(["--port", str(port), "--cluster-port", str(bus), "--bind", "127.0.0.1",
                               "--cluster-enabled", "yes", "--cluster-config-file", str(node / "nodes.conf"),
                               "--save", "", "--appendonly", "no", "--dir", str(node), "--logfile", str(log),
                               "--daemonize", "no"], port, log)
            self.ports.append(port)
        done = subprocess.run([_binary("redis-cli"), "--cluster", "create",
                               *(f"127.0.0.1:{p}" for p in self.ports), "--cluster-replicas", "0", "--cluster-yes"],
                              capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
        if done.returncode:
            self.close()
            raise ServiceStartError(f"redis-cli --cluster create failed: {done.stdout[-1500:]}{done.stderr[-500:]}")
        wait_until(self.ready, START_TIMEOUT_S * 2, "redis cluster state ok")
        return self

    def ready(self) -> bool:
        return all("cluster_state:ok" in cli(p, "cluster", "info") for p in self.ports)

    def close(self) -> None:
        if self._procs is not None:
            self._procs.close()
            self._procs = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


class RedisSentinelServer:
    """A master and one Sentinel (quorum 1); ``url(db)`` is its ``redis+sentinel://`` URL.

    ``replica=True`` adds a replica of the master, which ``failover()`` promotes."""

    def __init__(self, replica: bool = False) -> None:
        self.master = RedisServer()
        self.port = 0
        self.replica_port = 0
        self._replica = replica
        self._procs: _Processes | None = None

    def url(self, db: int = 0) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{SERVICE}/{db}"

    def start(self) -> Self:
        self.master.start()
        self._procs = _Processes("routeiq-redis-sentinel-")
        self.port = free_port()
        conf, log = self._procs.dir / "sentinel.conf", self._procs.dir / "sentinel.log"
        conf.write_text("\n".join([  # the Sentinel rewrites this file: it lives in the temp folder
            f"port {self.port}", "bind 127.0.0.1", "daemonize no", f"logfile {log}", f"dir {self._procs.dir}",
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 1",
            f"sentinel down-after-milliseconds {SERVICE} 5000", ""]))
        if self._replica:
            self.replica_port = free_port()
            rlog = self._procs.dir / "replica.log"
            self._procs.spawn(["--port", str(self.replica_port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(self._procs.dir), "--logfile", str(rlog),
                               "--replicaof", "127.0.0.1", str(self.master.port)], self.replica_port, rlog)
            wait_until(lambda: "master_link_status:up" in cli(self.replica_port, "info", "replication"),
                       START_TIMEOUT_S, "the replica follows the master")
        self._procs.spawn([str(conf), "--sentinel"], self.port, log)
        wait_until(lambda: str(self.master.port) in cli(self.port, "sentinel", "get-master-addr-by-name", SERVICE),
                   START_TIMEOUT_S, "sentinel knows the master")
        if self._replica:
            wait_until(lambda: str(self.replica_port) in cli(self.port, "sentinel", "replicas", SERVICE),
                       START_TIMEOUT_S, "sentinel knows the replica")
        return self

    def failover(self, timeout: float = 120) -> None:
        """``SENTINEL FAILOVER``: the replica becomes the master; returns once the Sentinel says so."""
        cli(self.master.port, "wait", "1", "5000")  # the replica has every write first
        wait_until(lambda: cli(self.port, "sentinel", "failover", SERVICE).startswith("OK"), timeout,
                   "sentinel failover accepted")
        wait_until(lambda: str(self.replica_port) in cli(self.port, "sentinel", "get-master-addr-by-name", SERVICE)
                   and "role:master" in cli(self.replica_port, "info", "replication"), timeout, "failover done")

    def close(self) -> None:
        if self._procs is not None:
            self._procs.close()
            self._procs = None
        self.master.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
