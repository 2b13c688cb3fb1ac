"""``LearnedRouter``: a verified artifact plus the embedder, predicting per-model quality.

Role in the graph: the router-scoring deployment loads one per replica at start-up and
calls ``predict`` through ``asyncio.to_thread``; ``decide`` then applies the request's
lambda. This module must not import llmrouter, ray or fastapi: serving needs only the
embedder (ONNX Runtime + tokenizers, no torch) and the weight arrays (numpy).

Thread safety: after ``load`` nothing is mutated; ``predict`` only reads the weights and
calls the thread-safe ``Embedder.embed``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from router_models.artifacts import ArtifactError, load_artifact
from router_models.embedding import EMBEDDER_NAME, EMBEDDING_DIM, Embedder, EmbedderConfig, split_encoder
from router_models.inference.scorers import PREDICTORS
from router_models.static_embedding import STATIC, StaticEmbedder, split_static

QueryEmbedder = Embedder | StaticEmbedder
"""What a router embeds queries with: the MiniLM encoder, or static token vectors."""


class LearnedRouter:
    """Predicts each artifact model's quality in [0, 1] for a batch of query texts."""

    def __init__(
        self,
        manifest: dict[str, Any],
        tensors: Mapping[str, np.ndarray],
        embedder: QueryEmbedder | None,
        pickled: Any = None,
    ) -> None:
        self.manifest = manifest
        self.models: list[str] = list(manifest["models"])
        self.prices: dict[str, float] = {m: float(p) for m, p in manifest["prices"].items()}
        self.default_lambda: float = float(manifest["default_lambda"])
        self.router_type: str = str(manifest["router_type"])
        self._params: dict[str, Any] = dict(manifest.get("params", {}))
        self._tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
        self._pickled = pickled
        self._embedder = embedder

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        signing_key: bytes | None = None,
        allow_pickle: bool = False,
        embedder: QueryEmbedder | None = None,
        num_threads: int | None = None,
    ) -> LearnedRouter:
        """Verify and load ``path`` (see ``artifacts.store``); raise ``ArtifactError`` if refused.

        ``embedder`` lets replicas share one already-built embedder; its config must match
        the manifest's. ``num_threads`` sets the encoder's intra-op threads for a new embedder.
        """
        art = load_artifact(path, signing_key=signing_key, allow_pickle=allow_pickle)
        config = _embedder_config(path, art.manifest)
        _check_manifest(path, art.manifest, art.pickled)
        if embedder is not None and embedder.config != config:
            raise ArtifactError(f"{path}: artifact needs embedder {config}, got {embedder.config}")
        encoder, scoring = split_encoder(art.tensors)
        static, scoring = split_static(scoring)
        router = cls(art.manifest, scoring, None, art.pickled)
        router._self_check(path)
        router._embedder = embedder or _build_embedder(path, config, encoder, static, num_threads)
        return router

    @property
    def embedder(self) -> QueryEmbedder | None:
        return self._embedder

    @property
    def embedder_config(self) -> EmbedderConfig:
        return EmbedderConfig(**self.manifest["embedder"])

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """(n, len(models)) float32 predicted quality for ``texts`` (batched)."""
        if self._embedder is None:
            raise RuntimeError("router loaded without an embedder")
        return self.predict_embeddings(self._embedder.embed(texts))

    def predict_embeddings(self, x: np.ndarray) -> np.ndarray:
        """Same as ``predict`` from precomputed embeddings (evaluation, benchmarks)."""
        x = np.asarray(x, dtype=np.float32)
        if self._pickled is not None:
            out = np.asarray(self._pickled.predict(x), dtype=np.float32)
        else:
            out = PREDICTORS[self.router_type](x, self._tensors, self._params)
        return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)

    def quality_by_model(self, text: str) -> dict[str, float]:
        """One query's predictions keyed by model name (the input ``decide`` takes)."""
        return dict(zip(self.models, self.predict([text])[0].tolist(), strict=True))

    def _self_check(self, path: str | Path) -> None:
        try:
            out = self.predict_embeddings(np.zeros((1, EMBEDDING_DIM), np.float32))
        except Exception as exc:  # noqa: BLE001 - any mismatch between params and weights
            raise ArtifactError(f"{path}: weights do not fit router type {self.router_type!r} ({exc!r})") from None
        if out.shape != (1, len(self.models)) or not np.all(np.isfinite(out)):
            raise ArtifactError(f"{path}: predictions have shape {out.shape}, expected (1, {len(self.models)})")


def _build_embedder(
    path: str | Path, config: EmbedderConfig, encoder: Mapping[str, np.ndarray], static: Mapping[str, np.ndarray],
    num_threads: int | None,
) -> QueryEmbedder:
    """The manifest's embedder, with the artifact's fine-tuned encoder weights or static
    table if it has any (a static artifact with encoder weights, or the reverse, is refused)."""
    try:
        if config.kind == STATIC:
            if encoder:
                raise ValueError("a static embedder has no encoder weights to override")
            return StaticEmbedder.from_tensors(config, static)
        if static:
            raise ValueError(f"static embedder tensors in an artifact of embedder kind {config.kind!r}")
        return Embedder(config, num_threads=num_threads, encoder_overrides=encoder or None)
    except ValueError as exc:  # digest mismatch, unknown weight name or shape
        raise ArtifactError(f"{path}: encoder weights refused ({exc})") from None


def _embedder_config(path: str | Path, manifest: dict[str, Any]) -> EmbedderConfig:
    emb = manifest.get("embedder") or {}
    if emb.get("name") != EMBEDDER_NAME or emb.get("dim") != EMBEDDING_DIM:
        raise ArtifactError(
            f"{path}: embedder {emb.get('name')!r} dim {emb.get('dim')!r} is incompatible "
            f"(this build embeds with {EMBEDDER_NAME}, dim {EMBEDDING_DIM})"
        )
    try:
        config = EmbedderConfig(**emb)
    except TypeError as exc:
        raise ArtifactError(f"{path}: embedder settings not understood ({exc})") from None
    if config.kind not in ("minilm", STATIC):
        raise ArtifactError(f"{path}: embedder kind {config.kind!r} is unknown (minilm or {STATIC})")
    return config


def _check_manifest(path: str | Path, manifest: dict[str, Any], pickled: Any) -> None:
    models, prices = manifest.get("models"), manifest.get("prices")
    if not isinstance(models, list) or not models or not isinstance(prices, dict) or set(prices) != set(models):
        raise ArtifactError(f"{path}: manifest must list models and a price for each")
    if manifest.get("router_type") not in PREDICTORS and pickled is None:
        raise ArtifactError(f"{path}: unknown router type {manifest.get('router_type')!r}")
    lam = manifest.get("default_lambda")
    if not isinstance(lam, int | float) or lam < 0:
        raise ArtifactError(f"{path}: default_lambda must be a number >= 0")
