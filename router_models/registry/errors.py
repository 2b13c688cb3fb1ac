"""The one exception of the router registry (S3 access, a version refused, a bad URL)."""

from __future__ import annotations


class RegistryError(Exception):
    """A registry operation failed or refused a version; the message is one line.

    It pickles with its message (it may cross a Ray DeploymentHandle) and is what the
    CLI prints and what ``/router/info`` reports as a replica's last sync error.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (str(self),))


class VersionRefusedError(RegistryError):
    """A version's content was refused (a sha256 mismatch, a missing or bad signature), as
    opposed to the store being unreachable: retrying the same bytes soon will not help."""
