"""``s3://bucket/prefix`` URLs of a registry, parsed once."""

from __future__ import annotations

from dataclasses import dataclass

from router_models.registry.errors import RegistryError

SCHEME = "s3://"


@dataclass(frozen=True)
class RegistryLocation:
    """Where a registry lives: a bucket and a key prefix (no leading or trailing slash)."""

    bucket: str
    prefix: str = ""

    def key(self, *parts: str) -> str:
        """The object key of ``parts`` under the prefix."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}".rstrip("/")


def is_registry_url(value: str | None) -> bool:
    return bool(value) and str(value).startswith(SCHEME)


def parse_registry_url(url: str) -> RegistryLocation:
    """``s3://bucket[/prefix]`` → location; ``RegistryError`` names what is wrong."""
    if not is_registry_url(url):
        raise RegistryError(f"{url!r}: a registry is s3://bucket/prefix")
    bucket, _, prefix = url[len(SCHEME):].partition("/")
    if not bucket or "/" in bucket:
        raise RegistryError(f"{url!r}: no bucket (s3://bucket/prefix)")
    return RegistryLocation(bucket, prefix.strip("/"))
