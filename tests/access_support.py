"""Test-only helpers for the access tests: starting a private server, a backend's settings.

The servers themselves live in ``devtools.services``; the session's shared ones are the
``redis_server`` and ``postgres_server`` fixtures (tests/conftest.py). Every caller gets
its own key prefix and passes its own database, so tests never see each other's keys,
limits or rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import Any, Protocol, Self, TypeVar

import pytest

from devtools.configs import refuse_machine_services
from devtools.services import ServiceBinaryMissingError


class Startable(Protocol):
    def start(self) -> Self: ...


S = TypeVar("S", bound=Startable)


def start_service(factory: Callable[[], S]) -> S:
    """``factory().start()``; a missing binary fails the test in CI and skips it elsewhere."""
    try:
        return factory().start()
    except ServiceBinaryMissingError as err:
        msg = f"{err}; `make test` installs it"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def access_general(backend: str, tmp: str, *, database_url: str | None = None, redis_url: str | None = None,
                   **access: Any) -> dict[str, Any]:
    """``general_settings`` for a backend: ``real`` (Postgres + Redis at these URLs) or ``embedded``."""
    settings = {"redis_prefix": f"rqt-{secrets.token_hex(4)}", "sqlite_path": f"{tmp}/routeiq.db",
                "spend_flush_interval_s": 0.2, **access}
    general: dict[str, Any] = {"access": settings}
    if backend == "real":
        assert database_url and redis_url, "the real backend needs both URLs"
        general |= {"database_url": database_url, "redis_url": redis_url}
        refuse_machine_services(general)
    return general
