"""What an export object is called and holds: the same rows always give the same name and bytes.

The name comes from the batch's id range (zero-padded, so names sort by id) under the UTC
date of its first row; the bytes are gzip with a fixed header time (``mtime=0``) around
one JSON object per row in id order, keys sorted. So an upload repeated after a crash
overwrites the object with identical content: at-least-once delivery, no duplicate.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

ID_WIDTH = 20


class ExportUrlError(ValueError):
    """An export destination that is not ``s3://bucket[/prefix]``."""


@dataclass(frozen=True)
class ExportTarget:
    bucket: str
    prefix: str

    def key(self, first_id: int, last_id: int, first_at: datetime) -> str:
        day = first_at.astimezone(UTC).strftime("%Y-%m-%d")
        name = f"dt={day}/{first_id:0{ID_WIDTH}d}-{last_id:0{ID_WIDTH}d}.jsonl.gz"
        return f"{self.prefix}/{name}" if self.prefix else name

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def parse_export_url(url: str) -> ExportTarget:
    """``s3://bucket[/prefix]`` → its bucket and prefix (no trailing slash)."""
    scheme, sep, rest = url.partition("://")
    if scheme != "s3" or not sep:
        raise ExportUrlError(f"not an s3:// URL: {url[:64]!r} (s3://bucket[/prefix])")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ExportUrlError(f"no bucket in {url[:64]!r} (s3://bucket[/prefix])")
    return ExportTarget(bucket, prefix.strip("/"))


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def encode(rows: list[dict[str, Any]]) -> bytes:
    """Gzip JSONL of ``rows`` (in id order), byte-identical for identical rows."""
    lines = b"".join(orjson.dumps(_jsonable(r), option=orjson.OPT_SORT_KEYS) + b"\n" for r in rows)
    return gzip.compress(lines, mtime=0)


def decode(data: bytes) -> list[dict[str, Any]]:
    """The rows of an export object (tests, and anyone reading the bucket back)."""
    return [orjson.loads(line) for line in gzip.decompress(data).splitlines() if line]
