"""Live rotation of datastore credentials read from mounted secret files.

A ``database_url``/``redis_url`` (and the audit bucket's keys) given as ``file:/path`` is a
Kubernetes Secret key mounted as a file; ``app.secrets.SecretFile`` notices when the
kubelet swaps it. ``RotatingValue`` turns that into a credential change of a running
replica: it checks the file every ``interval_s``, **validates** a new value first (a
test connection with it) and only then **applies** it (new connections use it, the old
pool drains: ``app.access.rotation``). A value that fails validation (a typo, a password
the server does not accept yet) is never applied: the old one keeps serving, and the
refusal is logged once per value, counted (``Metrics.credential_reload_error``) and shown
in readiness (``credentials``) until a good value arrives. A refused value is validated
again at each check (``retry_s``, default every check): a Secret updated before
``ALTER ROLE`` ran is picked up as soon as it works.

Readiness detail holds states and exception type names only, never a value or a message
that could carry one. Must not import the drivers (the appliers do).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from app.background import stop
from app.secrets import FILE_PREFIX, secret_file

log = logging.getLogger("routeiq.credentials")


class CredentialReport:
    """What readiness and metrics say about each rotated credential."""

    def __init__(self, on_error: Callable[[str], None] | None = None) -> None:
        self.count: Callable[[str], None] = on_error or (lambda name: None)
        """Told the store name of each refusal (the wiring points it at the metric)."""
        self._states: dict[str, dict[str, Any]] = {}

    def watching(self, name: str) -> None:
        self._states.setdefault(name, {"status": "ok", "rotations": 0})

    def rotated(self, name: str) -> None:
        state = self._states.setdefault(name, {"rotations": 0})
        state.update(status="ok", rotations=int(state.get("rotations", 0)) + 1, rotated_at=time.time())
        state.pop("error", None)

    def refused(self, name: str, error: str) -> None:
        """A new value was refused (the old one is kept); ``error`` is a type name or a short,
        secret-free reason."""
        state = self._states.setdefault(name, {"rotations": 0})
        state.update(status="stale", error=error)
        self.count(name)

    def recovered(self, name: str) -> None:
        """The file went back to the value in use: nothing is refused any more."""
        state = self._states.setdefault(name, {"rotations": 0})
        state["status"] = "ok"
        state.pop("error", None)

    def detail(self) -> dict[str, Any] | None:
        """Readiness detail (``None``: nothing rotated is configured)."""
        return {k: dict(v) for k, v in self._states.items()} or None


Validate = Callable[[str], Awaitable[None]]
Apply = Callable[[str], Awaitable[None]]


class RotatingValue:
    """One secret-file-backed setting of a running replica (``name``: ``database``, ``redis``...)."""

    def __init__(self, name: str, path: str, current: str, *, validate: Validate, apply: Apply,
                 report: CredentialReport, retry_s: float = 0.0) -> None:
        self.name = name
        self._file = secret_file(path)
        self.current = current
        self._validate, self._apply, self._report = validate, apply, report
        self._retry_s = retry_s
        self._refused: str | None = None
        self._refused_at = float("-inf")
        self._bad_file: str | None = None
        report.watching(name)

    async def check(self) -> None:
        """Re-read the file; validate and apply a new value, or keep the old one and report."""
        new = self._file.get()  # a malformed new version: the previous value, and ``error`` says why
        if self._file.error is not None and self._file.error != self._bad_file:
            self._bad_file = self._file.error
            self._report.refused(self.name, f"unreadable secret file ({self._file.error})")
        if new == self.current:
            if self._file.error is None and (self._bad_file or self._refused):
                self._bad_file = self._refused = None
                self._report.recovered(self.name)
            return
        if new == self._refused and time.monotonic() - self._refused_at < self._retry_s:
            return
        try:
            await self._validate(new)
        except Exception as err:  # noqa: BLE001  (any failure: keep the old value)
            self._refuse(new, err)
            return
        await self._apply(new)
        self.current, self._refused, self._bad_file = new, None, None
        self._report.rotated(self.name)
        log.info("%s credentials rotated: new connections use the new value, the old pool drains", self.name)

    def _refuse(self, new: str, err: BaseException) -> None:
        first = new != self._refused
        self._refused, self._refused_at = new, time.monotonic()
        if first:  # once per bad value, not once per retry
            log.warning("%s: the rotated value was refused (%s); keeping the previous one", self.name,
                        type(err).__name__)
            self._report.refused(self.name, type(err).__name__)


def file_path(ref: str | None) -> str | None:
    """The path of a ``file:`` reference (the only kind that rotates); ``None`` otherwise."""
    if ref is not None and ref.startswith(FILE_PREFIX):
        return ref[len(FILE_PREFIX):]
    return None


class CredentialWatcher:
    """Checks every ``RotatingValue`` of the replica every ``interval_s`` in one task."""

    def __init__(self, values: list[RotatingValue], interval_s: float) -> None:
        self.values = values
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.values and self._task is None:
            self._task = asyncio.create_task(self._run(), name="credential-rotation")

    async def check_all(self) -> None:
        for value in self.values:
            try:
                await value.check()
            except Exception:  # a bug in an applier must not stop the loop
                log.exception("%s: credential check failed", value.name)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.check_all()

    async def close(self) -> None:
        await stop(self._task)
        self._task = None
