"""On-disk cache of query embeddings for training and evaluation (never for serving).

Embedding the 5,508 shipped queries takes about a minute on 2 cores; training several
router types and sweeping evaluations would redo it each time. The key is the sha256 of
the embedder config plus every text, so a changed config or dataset can never hit a
stale entry. Files are ``.npy`` loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from router_models.embedding import Embedder, EmbedderConfig
from router_models.static_embedding import StaticEmbedder

DEFAULT_CACHE_DIR = Path(os.environ.get("ROUTEIQ_CACHE_DIR", ".routeiq/cache"))


_CACHE_VERSION = "4"  # bump when Embedder's numerics change for the same config (4: ONNX Runtime encoder)


def cache_key(config: EmbedderConfig, texts: Sequence[str]) -> str:
    digest = hashlib.sha256((_CACHE_VERSION + json.dumps(config.to_dict(), sort_keys=True)).encode())
    for t in texts:
        digest.update(hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest())
    return digest.hexdigest()[:32]


def embed_cached(
    texts: Sequence[str],
    config: EmbedderConfig,
    *,
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
    embedder: Embedder | StaticEmbedder | None = None,
    progress: Callable[[int], None] | None = None,
    chunk: int = 256,
) -> np.ndarray:
    """Embeddings of ``texts`` with ``config``; computed once, then read from the cache.

    ``progress`` is called with the number of texts done after each chunk (for a bar).
    ``cache_dir=None`` disables the cache (tests).
    """
    path = cache_dir / f"emb-{cache_key(config, texts)}.npy" if cache_dir else None
    if path is not None and path.exists():
        arr = np.load(path, allow_pickle=False)
        if arr.shape == (len(texts), config.dim):
            if progress:
                progress(len(texts))
            return arr
    emb = embedder or Embedder(config)
    parts = []
    for start in range(0, len(texts), chunk):
        parts.append(emb.embed(texts[start : start + chunk]))
        if progress:
            progress(len(parts[-1]))
    out = np.concatenate(parts) if parts else np.empty((0, config.dim), np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, out, allow_pickle=False)
        tmp.replace(path)
    return out
