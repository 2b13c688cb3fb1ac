"""Does the torch-free serving encoder route like the torch encoder the router was trained with?

Serving embeds queries on ONNX Runtime (``router_models/minilm_onnx.py``); the shipped
router was trained, and its KNN bank embedded, with torch's int8 encoder. Dynamic
per-tensor int8 quantisation amplifies last-bit float differences (docstring there), so
the two do not agree bit for bit. This measures what that costs where it matters: the
same artifact's decisions and the README protocol's metrics with either encoder, on
train (in-sample for the shipped router) and on test (reported, never tuned on), plus
CPU time per query. Needs the `train` extra (torch), which serving does not install.

    python -m bench.encoder_parity            # writes bench/RESULTS-encoder.md
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from rich.progress import track

from bench.runs import machine
from router_models.data import DEFAULT_TEST, DEFAULT_TRAIN, load_routing_data
from router_models.embedding import split_encoder
from router_models.evaluation.protocol import EvalReport, evaluate, pick
from router_models.inference.learned import LearnedRouter

DEFAULT_ROUTER = Path("router_models/pretrained/default")
OUT = Path("bench/RESULTS-encoder.md")


def torch_embedder(router_dir: Path, router: LearnedRouter) -> Callable[[str], np.ndarray]:
    """The encoder the router was trained with: MiniLM + its tuned layers, torch dynamic int8."""
    import torch

    from router_models.artifacts.store import load_artifact
    from router_models.embedding import model_dir
    from router_models.minilm import load_minilm, mean_pool

    torch.set_num_threads(1)
    encoder, _ = split_encoder(load_artifact(router_dir).tensors)
    overrides = {k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in encoder.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torch.ao.quantization.quantize_dynamic(load_minilm(model_dir(), overrides), {torch.nn.Linear},
                                                       dtype=torch.qint8)
    assert router.embedder is not None
    emb = router.embedder

    def embed(text: str) -> np.ndarray:
        enc = emb.tokenizer.encode_batch([emb.clip(text)])
        ids, mask = torch.tensor([enc[0].ids]), torch.tensor([enc[0].attention_mask])
        with torch.inference_mode():
            return mean_pool(model(ids, mask), mask).numpy()[0]  # type: ignore[no-any-return]

    return embed


def embed_all(name: str, fn: Callable[[str], np.ndarray], queries: Sequence[str]) -> tuple[np.ndarray, float]:
    """Embeddings one query at a time (as served) and the median CPU ms per query."""
    out, cpu = [], []
    for q in track(queries, description=f"{name:>6}"):
        start = time.thread_time()
        out.append(fn(q))
        cpu.append(time.thread_time() - start)
    return np.stack(out), 1000 * float(np.median(cpu))


def _row(split: str, name: str, rep: EvalReport, agree: float, cpu_ms: float) -> str:
    c_at_q = f"{rep.c_at_q_best_pct:.1f}" if rep.c_at_q_best_pct is not None else "n/a"
    return (f"| {split} | {name} | {rep.q_at_c_best / rep.q_best:.4f} | {c_at_q} | {100 * agree:.1f} "
            f"| {cpu_ms:.1f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--router-dir", type=Path, default=DEFAULT_ROUTER)
    parser.add_argument("--limit", type=int, default=None, help="first N queries of each split (a quick look)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    router = LearnedRouter.load(args.router_dir, num_threads=1)
    assert router.embedder is not None
    served = router.embedder
    reference = torch_embedder(args.router_dir, router)
    train = load_routing_data(DEFAULT_TRAIN, models=router.models)
    rows, cosines = [], []
    for split, path in (("train (in-sample)", DEFAULT_TRAIN), ("test (reported only)", DEFAULT_TEST)):
        data = load_routing_data(path, models=router.models)
        queries = data.queries[: args.limit]
        scores = data.scores[: args.limit]
        x_ref, ms_ref = embed_all("torch", reference, queries)
        x_onnx, ms_onnx = embed_all("onnx", lambda q: served.embed([q])[0], queries)
        cosines.append((x_ref * x_onnx).sum(1))
        p_ref, p_onnx = router.predict_embeddings(x_ref), router.predict_embeddings(x_onnx)
        agree = float(np.mean(pick(p_ref, data.prices, router.default_lambda)
                              == pick(p_onnx, data.prices, router.default_lambda)))
        variants = (("torch int8 (trained with)", p_ref, ms_ref), ("ONNX Runtime int8 (served)", p_onnx, ms_onnx))
        for name, pred, ms in variants:
            rep = evaluate(pred, scores, data.prices, data.models, train.scores.mean(0))
            rows.append(_row(split, name, rep, agree, ms))
    cos = np.concatenate(cosines)
    text = "\n".join([
        f"# Serving encoder parity ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
        f"- machine: {machine()}", f"- router: `{args.router_dir}`; queries embedded one at a time, 1 thread each",
        f"- cosine between the two encoders' embeddings: mean {cos.mean():.4f}, 1st percentile "
        f"{np.percentile(cos, 1):.4f}, min {cos.min():.4f} ({len(cos)} queries)", "",
        "| split | encoder | Q@C_best / Q_best | C@Q_best % | same decision at default λ % | CPU ms / query (p50) |",
        "| --- | --- | ---: | ---: | ---: | ---: |", *rows, "",
    ])
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
