"""A node's local copies of registry versions, one directory per artifact sha256.

``root/<sha256>/`` appears only complete and verified: a download goes to a temporary
directory beside it and is renamed into place (atomic on one filesystem), so a replica
that crashes mid-download leaves only a ``.tmp-*`` directory, never a half artifact
another replica could load; two replicas downloading at once (no lock) both succeed and
the second rename yields to the first. The cache also remembers which version each
registry router last served (``pointers/``), so a replica that starts while the store is
unreachable serves that version from the cache (air-gapped or pre-seeded nodes).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from router_models.artifacts import MANIFEST_FILE
from router_models.data import file_sha256
from router_models.registry.errors import RegistryError, VersionRefusedError

_HEX = set("0123456789abcdef")


class ArtifactCache:
    """Complete artifact directories under ``root``, keyed by the sha256 of their manifest."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not set(sha256) <= _HEX:
            raise RegistryError(f"{sha256!r} is not a sha256")
        return self.root / sha256

    def has(self, sha256: str) -> bool:
        """The artifact is here and its manifest is the one named (a cheap re-check per use)."""
        manifest = self.path(sha256) / MANIFEST_FILE
        return manifest.is_file() and file_sha256(manifest) == sha256

    def fill(self, sha256: str, download: Callable[[Path], None]) -> Path:
        """The cached directory of ``sha256``, downloading it with ``download(tmp_dir)`` first
        if missing. ``download`` must verify what it writes (``RouterRegistry.fetch`` does)."""
        target = self.path(sha256)
        if self.has(sha256):
            return target
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".tmp-{sha256[:12]}-"))
        try:
            download(tmp)
            if file_sha256(tmp / MANIFEST_FILE) != sha256:
                raise VersionRefusedError(f"downloaded manifest is not {sha256[:12]} (tampered or corrupt)")
            os.chmod(tmp, 0o755)  # mkdtemp makes 0700; other replicas' users read it
            if self.has(sha256):
                return target  # another downloader finished meanwhile
            if target.exists():  # a broken leftover: moved aside, then replaced
                os.replace(target, tmp.with_name(f"{tmp.name}-old"))
                shutil.rmtree(tmp.with_name(f"{tmp.name}-old"), ignore_errors=True)
            os.replace(tmp, target)
        except OSError:
            if not self.has(sha256):  # another downloader won the rename: its copy is as good
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target

    def remember(self, registry: str, router: str, version: str, sha256: str) -> None:
        """Record the version ``router`` of ``registry`` serves (read when the store is down)."""
        path = self._pointer_path(registry, router)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w") as fh:
            json.dump({"registry": registry, "router": router, "version": version, "sha256": sha256}, fh)
        os.replace(tmp, path)

    def remembered(self, registry: str, router: str) -> tuple[str, str] | None:
        """``(version, sha256)`` last served and still cached, else ``None``."""
        try:
            data = json.loads(self._pointer_path(registry, router).read_text())
            version, sha = str(data["version"]), str(data["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return (version, sha) if self.has(sha) else None

    def prune(self, keep: set[str], min_age_s: float = 600.0) -> list[str]:
        """Remove what no router on this node needs any more; the names removed.

        Kept: ``keep`` (the caller's current and previous versions), every version a router
        of this node serves (its remembered pointer), and anything younger than
        ``min_age_s`` (another replica may be loading it). Removed: other versions, and
        temporary directories of downloads that died (a crashed lock holder's). Without it a
        long-lived pod's emptyDir fills with every version ever promoted.
        """
        if not self.root.is_dir():
            return []
        served = set(keep)
        for pointer in (self.root / "pointers").glob("*.json"):
            try:
                served.add(str(json.loads(pointer.read_text())["sha256"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        removed = []
        now = time.time()
        for entry in self.root.iterdir():
            is_version = len(entry.name) == 64 and set(entry.name) <= _HEX
            if not (is_version or entry.name.startswith(".tmp-")) or entry.name in served:
                continue
            try:
                if now - entry.stat().st_mtime < min_age_s:
                    continue
                shutil.rmtree(entry)
            except OSError:
                continue  # another replica removed it first, or it is in use: next time
            removed.append(entry.name)
        return removed

    def _pointer_path(self, registry: str, router: str) -> Path:
        name = hashlib.sha256(f"{registry}\0{router}".encode()).hexdigest()[:32]
        return self.root / "pointers" / f"{name}.json"
