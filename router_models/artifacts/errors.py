"""The one exception a router artifact load or save raises."""

from __future__ import annotations


class ArtifactError(Exception):
    """A router artifact was refused: tampered, unsigned when a key is set, incompatible,
    pickled without opt-in, or unreadable.

    The message is one line (it ends up in logs and in the gateway's start-up error), and
    the exception pickles with its message (it may cross a Ray DeploymentHandle).
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (str(self),))
