"""The local spool: each planned batch's object, on disk, until S3 has it.

A batch is written here (atomically: a temporary file, ``fsync``, ``rename``) before its
upload and removed only after the ledger records the upload, so an S3 outage grows the
spool instead of losing anything, and a restarted replica uploads what it finds here
first. The directory should outlive the process (an ``emptyDir`` survives container
restarts; a PersistentVolume survives the pod). A batch missing from the spool (another
replica planned it, or the directory was lost) is rebuilt from the database: the rows
of a planned batch never change, so the object is the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from app.audit.ledger import Batch

SUFFIX = ".spool"


@dataclass(frozen=True)
class Spooled:
    batch: Batch
    path: Path


class Spool:
    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory).expanduser()

    def _name(self, batch: Batch) -> str:
        return f"{batch.after_id:020d}-{batch.last_id:020d}-{batch.rows}--{quote(batch.object_key, safe='')}{SUFFIX}"

    def put(self, batch: Batch, data: bytes) -> Path:
        """Write the batch's object durably (a crash leaves either the whole file or none)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / self._name(batch)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return path

    def batches(self) -> list[Spooled]:
        """What is spooled, oldest batch first (half-written temporary files are ignored)."""
        if not self.dir.is_dir():
            return []
        out = []
        for path in self.dir.glob(f"*{SUFFIX}"):
            head, _, key = path.name.removesuffix(SUFFIX).partition("--")
            parts = head.split("-")
            if len(parts) != 3 or not all(p.isdigit() for p in parts) or not key:
                continue
            out.append(Spooled(Batch(int(parts[0]), int(parts[1]), int(parts[2]), unquote(key)), path))
        return sorted(out, key=lambda s: s.batch.after_id)

    def has(self, batch: Batch) -> bool:
        return (self.dir / self._name(batch)).exists()

    def read(self, batch: Batch) -> bytes:
        return (self.dir / self._name(batch)).read_bytes()

    def remove(self, batch: Batch) -> None:
        (self.dir / self._name(batch)).unlink(missing_ok=True)

    def size(self) -> tuple[int, int]:
        """(batches, bytes) spooled."""
        files = self.batches()
        return len(files), sum(s.path.stat().st_size for s in files if s.path.exists())
