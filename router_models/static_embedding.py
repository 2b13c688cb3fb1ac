"""A static embedder: MiniLM's token vectors looked up and pooled, no encoder pass (issue #21).

Why: the MiniLM pass is the price of ``auto``. On this 2-core machine it costs ~11 ms of
CPU per query, three times a whole concrete-model request through the gateway
(bench/RESULTS-auto.md), so the scorer caps ``auto`` at a fraction of a concrete model's
throughput. A static embedder pays that pass once per *vocabulary token*, at training: each
WordPiece token goes through the bundled encoder alone (``[CLS] token [SEP]``) and its
output vector is kept in a table. A query's embedding is then the IDF-weighted mean of its
tokens' rows, L2-normalised: a tokenizer call and a gather. A whole decision (embed, score,
decide) measured 0.4 ms against the MiniLM router's 12.5 ms (bench/RESULTS-auto.md). This is model2vec's
idea (Tulkens and van Dongen, 2024). The model2vec package is not used: its distillation
loads the encoder through transformers and torch and ships its own tokenizer, while the
encoder here is already an ONNX graph over the bundled tokenizer, so the distillation is one
batched pass over it, and serving needs only numpy and ``tokenizers``.

The trade, measured in 5-fold cross-validation on the training split (docs/routing.md):
the default fine-tuned MiniLM router reaches 1.062 x Q_best at C_best and Q_best at 22.8 %
of C_best's cost; an ``ensemble`` router on static embeddings about 1.04 x and 42 %. Routers
choose the embedder when they are trained (``routeiq train --embedder static``).

Weights: inverse document frequency over the training queries (smoothed, ``log((n+1)/(df+1))
+ 1``); frequent tokens ("the", "?") carry the same vector in every query and would pull all
embeddings together. The window's unused positions (``max_seq_length`` minus the text's
tokens) are pooled as the ``[PAD]`` token's vector with weight 1 each, so the embedding also
says how long the query is, which a mean of token vectors alone forgets. Measured in 5-fold
CV, seeds 0-2: without it 1.044-1.048 x / 53-57 %, with it 1.039-1.044 x / 40-43 %. The table is distilled from
the bundled MiniLM as shipped (not a fine-tuned one), so it is the same for every router;
the weights depend on the training queries, and both travel in the artifact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import numpy as np

from router_models.embedding import EmbedderConfig, bundled_tokenizer, clip_text, model_dir

STATIC = "static"
"""``EmbedderConfig.kind`` of this embedder."""
STATIC_PREFIX = "static."
"""Artifact tensors under this prefix are the static embedder's table and weights."""
_TABLE, _WEIGHTS = f"{STATIC_PREFIX}table", f"{STATIC_PREFIX}weights"
_PAD, _CLS, _SEP = 0, 101, 102  # BERT's special tokens in the bundled vocabulary
_DISTILL_BATCH = 512


def static_config(max_seq_length: int = 128) -> EmbedderConfig:
    """The config of a static embedder before its weights exist (``digest`` fills it)."""
    return EmbedderConfig(kind=STATIC, max_seq_length=max_seq_length, quantize=False)


def split_static(tensors: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(static embedder tensors, the rest) of an artifact's tensors."""
    static = {k: v for k, v in tensors.items() if k.startswith(STATIC_PREFIX)}
    return static, {k: v for k, v in tensors.items() if not k.startswith(STATIC_PREFIX)}


def vocabulary_size() -> int:
    """Rows of the table: the bundled tokenizer's vocabulary."""
    return int(bundled_tokenizer(8).get_vocab_size())


def distill_table(progress: Callable[[int], None] | None = None) -> np.ndarray:
    """(vocabulary, 384) float32: each token's output of the bundled MiniLM, run alone.

    fp32 in batches (every input is three tokens long, so no padding happens); the int8 path
    would scale activations per batch. ``progress`` gets the tokens done per batch. The table
    depends only on the bundled encoder, so a process computes it once (~16 s on 2 cores) and
    hands out copies: a retraining loop or a test session distils it once, not per router.
    """
    size = vocabulary_size()
    if size not in _DISTILLED:
        _DISTILLED[size] = _distill(size, progress)
    elif progress:
        progress(size)
    return _DISTILLED[size].copy()


_DISTILLED: dict[int, np.ndarray] = {}
"""The tables this process distilled, by vocabulary size (one, outside tests)."""


def _distill(size: int, progress: Callable[[int], None] | None) -> np.ndarray:
    from router_models.minilm_onnx import load_onnx_minilm

    encoder = load_onnx_minilm(model_dir(), quantize=False)
    table = np.empty((size, 384), np.float32)
    for start in range(0, size, _DISTILL_BATCH):
        ids = np.arange(start, min(size, start + _DISTILL_BATCH), dtype=np.int64)
        batch = np.stack([np.full_like(ids, _CLS), ids, np.full_like(ids, _SEP)], axis=1)
        table[ids] = encoder.encode(batch, np.ones_like(batch))[:, 1, :]
        if progress:
            progress(len(ids))
    return table


def idf_weights(texts: Sequence[str], vocabulary: int, max_seq_length: int) -> np.ndarray:
    """Smoothed inverse document frequency of each token over ``texts`` (float32)."""
    tok = bundled_tokenizer(max_seq_length)
    df = np.zeros(vocabulary, np.float64)
    for enc in tok.encode_batch([clip_text(t, max_seq_length) for t in texts]):
        df[np.unique(np.asarray(enc.ids[1:-1], dtype=np.int64))] += 1
    return (np.log((len(texts) + 1) / (df + 1)) + 1).astype(np.float32)


def _digest(table: np.ndarray, weights: np.ndarray) -> str:
    digest = hashlib.sha256()
    for arr in (table, weights):
        digest.update(np.ascontiguousarray(arr, dtype=np.float32).tobytes())
    return digest.hexdigest()


class StaticEmbedder:
    """Batch text -> (n, 384) float32, L2-normalised, IDF-weighted means of token vectors.

    Same interface as ``Embedder`` (``config``, ``clip``, ``embed``); thread-safe after
    construction (the tokenizer and arrays are only read).

    Each text is tokenised with ``encode``, not ``encode_batch``: in a serving process the
    decision shares the GIL with the replica's other Python threads (issue #21), and
    ``encode_batch`` releases the GIL, then waits to take it back. With one other busy thread
    in the process that wait is the interpreter's 5 ms switch interval: 5.5 ms of wall time
    per query instead of 0.4 for the tokenizer alone, and a whole decision 24 ms instead of 17
    (in-process, 500 test queries, the rest is numpy's own releases). Alone, both cost the same
    (0.2 ms); the batch an ingress scores is one query.
    """

    def __init__(self, config: EmbedderConfig, table: np.ndarray, weights: np.ndarray) -> None:
        table = np.asarray(table).astype(np.float16).astype(np.float32)  # what an artifact keeps
        weights = np.ascontiguousarray(weights, dtype=np.float32)
        if config.kind != STATIC or table.ndim != 2 or table.shape[1] != config.dim \
                or weights.shape != (table.shape[0],):
            raise ValueError(f"static embedder tensors {table.shape} / {weights.shape} do not fit {config}")
        digest = _digest(table, weights)
        if config.encoder_sha256 not in (None, digest):
            raise ValueError("static embedder tensors do not match the config's digest")
        self.config = replace(config, encoder_sha256=digest)
        self._table, self._weights = table, weights
        self._tokenizer = bundled_tokenizer(config.max_seq_length)

    @classmethod
    def distill(cls, texts: Sequence[str], config: EmbedderConfig | None = None,
                progress: Callable[[int], None] | None = None) -> StaticEmbedder:
        """A new static embedder: the distilled table, weighted by ``texts`` (training queries)."""
        config = config or static_config()
        table = distill_table(progress)
        weights = idf_weights(texts, table.shape[0], config.max_seq_length)
        return cls(replace(config, encoder_sha256=None), table, weights)

    @classmethod
    def from_tensors(cls, config: EmbedderConfig, tensors: Mapping[str, np.ndarray]) -> StaticEmbedder:
        if _TABLE not in tensors or _WEIGHTS not in tensors:
            raise ValueError(f"a static embedder needs the tensors {_TABLE} and {_WEIGHTS}")
        return cls(config, tensors[_TABLE], tensors[_WEIGHTS])

    def tensors(self) -> dict[str, np.ndarray]:
        """What an artifact stores: the table as float16, half the size (``__init__`` rounds
        every table to float16 first, so a reloaded embedder has the same digest)."""
        return {_TABLE: self._table.astype(np.float16), _WEIGHTS: self._weights}

    def clip(self, text: str) -> str:
        return clip_text(text, self.config.max_seq_length)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.config.dim), np.float32)
        if not texts:
            return out
        clipped = [self.clip(t if isinstance(t, str) else str(t)) for t in texts]
        pad = self._table[_PAD]
        for row, text in enumerate(clipped):
            enc = self._tokenizer.encode(text)  # not encode_batch: see the class docstring
            ids = np.asarray(enc.ids[1:-1], dtype=np.int64)
            w = self._weights[ids]
            unused = self.config.max_seq_length - len(enc.ids)  # window positions the text leaves free
            out[row] = (w @ self._table[ids] + unused * pad) / max(float(w.sum()) + unused, 1e-9)
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out / norms
