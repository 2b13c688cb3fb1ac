"""What the private servers share: their errors and a condition-based wait.

A loaded 2-core machine can take many seconds to start a server, so every wait here
is a condition polled until a generous deadline, never a fixed sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable

START_TIMEOUT_S = 60.0
"""How long a server may take to answer after it was started (generous on purpose)."""


class ServiceBinaryMissingError(RuntimeError):
    """The server's binaries are not installed (``make test`` installs them when it can)."""


class ServiceStartError(RuntimeError):
    """The server was started but did not answer in time; the message carries its log's tail."""


def wait_until(check: Callable[[], bool], timeout: float, what: str, failed: Callable[[], bool] | None = None) -> None:
    """Poll ``check`` until it is true; raise when ``timeout`` passes or ``failed()`` says it never will."""
    deadline = time.monotonic() + timeout
    while not check():
        if failed is not None and failed():
            raise ServiceStartError(f"{what}: the process exited")
        if time.monotonic() > deadline:
            raise ServiceStartError(f"{what}: no answer in {timeout:.0f} s")
        time.sleep(0.05)


def log_tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except OSError:
        return ""
