"""Where a new config version comes from: an ``s3://bucket/key`` object or a (mounted) file.

A source answers two questions: ``tag()``, a cheap "has anything changed?" (the S3
object's ETag from a HEAD, or a file's mtime and size from a stat), and ``fetch()``, the
text and its version (the ETag; for a file, the sha256 of its bytes, so a touch that
changes nothing is no new version). Both are blocking: the watcher runs them in a thread.
Every failure is a one-line ``SourceError``; botocore's exceptions stop here.

Credentials for S3 come from boto3's standard chain, as for the router registry
(``router_models.registry.s3``); ``endpoint_url`` is for S3-compatible stores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from app.config import ConfigSyncSettings


class SourceError(Exception):
    """The source could not be read (down, missing object, unreadable file); one line."""


@dataclass(frozen=True)
class Fetched:
    """One version of the config file as read from its source."""

    version: str
    """The S3 ETag, or ``sha256:<first 16 hex>`` of a file's bytes."""
    text: str


class ConfigSource(Protocol):
    location: str

    def tag(self) -> str:
        """A value that changes whenever the content may have changed (cheap)."""
        ...

    def fetch(self) -> Fetched: ...


def content_version(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def _decode(data: bytes, location: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise SourceError(f"{location}: not UTF-8 text") from None


class FileSource:
    """A file, e.g. a ConfigMap mounted into the pod (Kubernetes swaps it by a symlink rename,
    which changes the mtime the stat sees)."""

    def __init__(self, path: str) -> None:
        self.location = path
        self._path = Path(path.removeprefix("file://"))

    def tag(self) -> str:
        try:
            st = self._path.stat()
        except OSError as err:
            raise SourceError(f"{self.location}: cannot read ({err.strerror})") from None
        return f"{st.st_mtime_ns}:{st.st_size}"

    def fetch(self) -> Fetched:
        try:
            data = self._path.read_bytes()
        except OSError as err:
            raise SourceError(f"{self.location}: cannot read ({err.strerror})") from None
        return Fetched(content_version(data), _decode(data, self.location))


class S3Source:
    """One object in an S3-compatible store."""

    def __init__(self, url: str, client: Any) -> None:
        self.location = url
        self.bucket, _, self.key = url.removeprefix("s3://").partition("/")
        if not self.bucket or not self.key:
            raise SourceError(f"{url}: expected s3://bucket/key")
        self._s3 = client

    def tag(self) -> str:
        with _s3_errors(f"read {self.location}"):
            head = self._s3.head_object(Bucket=self.bucket, Key=self.key)
        return str(head["ETag"]).strip('"')

    def fetch(self) -> Fetched:
        with _s3_errors(f"read {self.location}"):
            obj = self._s3.get_object(Bucket=self.bucket, Key=self.key)
            data = obj["Body"].read()
        return Fetched(str(obj["ETag"]).strip('"'), _decode(data, self.location))


@contextmanager
def _s3_errors(what: str) -> Iterator[None]:
    """botocore's exceptions around ``what`` (translated by the registry's one boundary) as ``SourceError``."""
    from router_models.registry import RegistryError
    from router_models.registry.s3 import s3_errors

    try:
        with s3_errors(what):
            yield
    except RegistryError as err:
        raise SourceError(str(err)) from None


def open_source(location: str, settings: ConfigSyncSettings | None = None) -> ConfigSource:
    """The source for ``location`` (``s3://`` with the settings' endpoint, else a file)."""
    if not location.startswith("s3://"):
        return FileSource(location)
    from router_models.registry.s3 import build_s3_client

    s = settings or ConfigSyncSettings()
    client = build_s3_client(s.endpoint_url, s.region, timeout_s=s.timeout_s, max_attempts=1)
    return S3Source(location, client)
