"""A bounded LRU of a learned router's quality predictions, keyed by prompt hash.

Why scores and not decisions: the decision depends on the request's λ and on its
candidates (what the key may use, what fits the context), which differ between two
requests with the same prompt; the predicted quality per model does not. A hit skips the
encoder, the scorer's whole cost; ``decide`` still runs per request.

The key is the router's version (its artifact and the digests of its weights) plus a
BLAKE2b digest of the text: a swapped router never answers from its predecessor's rows,
and the prompt itself is not kept in memory. Thread-safe: the strategy reads and fills it
from its worker thread while a reload may clear it from the replica's loop.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np

DEFAULT_ENTRIES = 4096
"""About 4096 x (9 floats + key), ~0.5 MB, per learned router."""


def prompt_key(version: str, text: str) -> bytes:
    """The cache key of ``text`` under router ``version`` (32 bytes; the text is not kept)."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16)
    return hashlib.blake2b(version.encode(), digest_size=16).digest() + digest.digest()


class PredictionCache:
    """Least-recently-used quality rows, at most ``max_entries`` of them (0 disables it)."""

    def __init__(self, max_entries: int = DEFAULT_ENTRIES) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        self.max_entries = max_entries
        self._rows: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, version: str, text: str) -> np.ndarray | None:
        """The row predicted for ``text`` by router ``version``, or None."""
        key = prompt_key(version, text)
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                self.misses += 1
                return None
            self._rows.move_to_end(key)
            self.hits += 1
            return row

    def put(self, version: str, text: str, row: np.ndarray) -> None:
        """Remember ``row`` (copied, read-only); the least recently used entry goes when full."""
        if self.max_entries == 0:
            return
        kept = np.array(row, dtype=np.float32, copy=True)
        kept.flags.writeable = False
        key = prompt_key(version, text)
        with self._lock:
            self._rows[key] = kept
            self._rows.move_to_end(key)
            while len(self._rows) > self.max_entries:
                self._rows.popitem(last=False)

    def clear(self) -> None:
        """Forget every row (a router swap: its predecessor's rows must never answer)."""
        with self._lock:
            self._rows.clear()
