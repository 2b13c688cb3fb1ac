from __future__ import annotations

import numpy as np

from router_models.embedding import Embedder


def test_shape_dtype_and_norm(embedder: Embedder) -> None:
    out = embedder.embed(["hello world", "a much longer question about routing and cost " * 3])
    assert out.shape == (2, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_very_long_query_is_truncated_not_an_error(embedder: Embedder) -> None:
    long_text = "routing " * 200_000  # ~1.6 MB, far beyond the window
    head = "routing " * (embedder.config.max_seq_length * 2)
    out = embedder.embed([long_text, head])
    assert out.shape == (2, 384) and np.all(np.isfinite(out))
    # everything past the window is ignored: same embedding as a text that just fills it
    assert float(out[0] @ out[1]) > 0.999


def test_batch_order_is_preserved(embedder: Embedder) -> None:
    texts = ["short", "a medium length query about maths", "x " * 300, "capital of France?"]
    batch = embedder.embed(texts)
    single = np.stack([embedder.embed([t])[0] for t in texts])
    # dynamic int8 quantises per batch, so allow small numeric drift, but rows must match
    assert np.all(np.sum(batch * single, axis=1) > 0.98)
    assert np.argmax(batch @ single.T, axis=1).tolist() == [0, 1, 2, 3]
