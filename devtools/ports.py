"""Loopback port helpers (stdlib only: the service starters use them without aiohttp)."""

from __future__ import annotations

import socket
import time


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel's choice, from the ephemeral range)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def wait_port(port: int, timeout: float = 30.0) -> None:
    """Wait until something accepts connections on ``port`` (a condition, not a sleep)."""
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"port {port} did not open in {timeout:.0f} s")
        time.sleep(0.05)
