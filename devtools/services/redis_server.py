"""A private ``redis-server`` for one test session or one test: free port, no persistence.

Started as a child process on ``127.0.0.1`` with ``--save "" --appendonly no`` and its
working directory in a temporary folder, so it writes nothing anywhere else and loses
everything when stopped (the outage tests rely on that). It must never be pointed at
6379: that is the machine's own Redis.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from devtools.ports import free_port
from devtools.services.common import START_TIMEOUT_S, ServiceBinaryMissingError, ServiceStartError, log_tail, wait_until


def ping(port: int, host: str = "127.0.0.1") -> bool:
    """True when a Redis on ``port`` answers PING (a raw RESP call: no client library, no state)."""
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``start()`` / ``stop()`` / ``restart()`` keep the port, so clients' URLs stay valid."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or 0
        self.dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        atexit.register(self.close)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceBinaryMissingError("redis-server is not installed (Debian: apt install redis-server)")
        if self.dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="routeiq-redis-"))
        if self.port:  # a restart (or a port asked for): clients' URLs name this port
            self._spawn(binary)
            return self
        # A fresh port can be taken between free_port() and the bind: try another one.
        for attempt in range(3):
            self.port = free_port()
            try:
                self._spawn(binary)
                return self
            except ServiceStartError:
                self.stop()
                if attempt == 2:
                    raise
        return self

    def _spawn(self, binary: str) -> None:
        assert self.dir is not None
        log = self.dir / "redis.log"
        self._proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--logfile", str(log), "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: ping(self.port), START_TIMEOUT_S, f"redis-server on port {self.port}",
                       failed=lambda: not self.running)
        except ServiceStartError as err:
            raise ServiceStartError(f"{err}\n{log_tail(str(log))}") from None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 30 s); a server already gone is fine."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and remove the working directory."""
        self.stop()
        if self.dir is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.dir)
            self.dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
