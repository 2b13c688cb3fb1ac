"""Secrets read from mounted files, re-read when Kubernetes rotates them.

A secret reference ``file:/path`` (besides ``os.environ/NAME``, see ``app.config``)
names a file, typically a key of a Kubernetes Secret mounted as a volume. The kubelet
rotates such a file by swapping the ``..data`` symlink of the mount, so the path's
inode and mtime change; ``SecretFile`` notices that and re-reads the file, so a
rotated master key or provider key takes effect without a restart.

Hot path: ``get()`` is called per request (auth, provider call). Within
``RECHECK_S`` of the last check it returns the cached value after one clock read; at
most once per ``RECHECK_S`` it ``stat``s the file (a tmpfs inode: microseconds, so it
stays on the event loop) and reads it only when the stat changed.

Invariants: the first read must succeed (``SecretError`` at start-up, one line); after
that a rotation to an empty, unreadable or malformed file keeps the previous value and
logs one warning per bad version of the file, never per request. This module must not
import the rest of ``app`` (``app.config`` imports it).
"""

from __future__ import annotations

import logging
import os
import threading
import time

log = logging.getLogger("routeiq.secrets")

FILE_PREFIX = "file:"
RECHECK_S = 1.0
"""At most one ``stat`` per secret file per this many seconds (tests lower it)."""
MAX_BYTES = 64 * 1024


class SecretError(ValueError):
    """A secret file cannot be read or is not a valid secret; one line."""


def parse_secret(raw: bytes) -> str:
    """The secret in a file's bytes: one token, at most one trailing newline.

    Rejects what a bad rotation looks like (empty file, a half-written or pasted value
    with spaces or several lines) rather than sending it as a key.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError("not UTF-8") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise SecretError("empty")
    if any(c.isspace() or not c.isprintable() for c in text):
        raise SecretError("contains whitespace or control characters")
    return text


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


_MISSING = (-1, -1, -1, -1)


class SecretFile:
    """One secret file's current value, re-read when the file changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._value: str | None = None
        self._stamp: tuple[int, int, int, int] | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()
        self.error: str | None = None
        """Why the file's current version was refused (its previous value is kept); ``None``
        after a good read. Credential rotation reports it (``app.credentials``)."""

    def get(self) -> str:
        """The current value (cached; see the module docstring for the cost)."""
        value = self._value
        if value is not None and time.monotonic() - self._checked_at < RECHECK_S:
            return value
        with self._lock:
            return self._refresh()

    def _refresh(self) -> str:
        self._checked_at = time.monotonic()
        stamp = _MISSING
        try:
            st = os.stat(self.path)
            stamp = _stamp(st)
            if stamp == self._stamp and self._value is not None:
                return self._value
            if st.st_size > MAX_BYTES:
                raise SecretError(f"larger than {MAX_BYTES} bytes")
            with open(self.path, "rb") as f:
                value = parse_secret(f.read(MAX_BYTES + 1))
        except (OSError, SecretError) as err:
            why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            return self._keep(why, stamp)
        if self._value is not None and value != self._value:
            log.info("secret file %s rotated", self.path)
        self._value, self._stamp, self.error = value, stamp, None
        return value

    def _keep(self, why: str, stamp: tuple[int, int, int, int]) -> str:
        if self._value is None:
            raise SecretError(f"secret file {self.path}: {why}")
        if stamp != self._stamp:  # one warning per bad version of the file, not per request
            log.warning("secret file %s: %s; keeping the previous value", self.path, why)
            self._stamp = stamp
        self.error = why
        return self._value


_files: dict[str, SecretFile] = {}
_files_lock = threading.Lock()


def secret_file(path: str) -> SecretFile:
    """The process-wide ``SecretFile`` for ``path`` (one cache per path)."""
    found = _files.get(path)
    if found is None:
        with _files_lock:
            found = _files.setdefault(path, SecretFile(path))
    return found


def read_secret_file(path: str) -> str:
    """The current value of the secret file at ``path``; ``SecretError`` if never readable."""
    return secret_file(path).get()


def clear_cache() -> None:
    """Forget every cached secret (tests)."""
    with _files_lock:
        _files.clear()
