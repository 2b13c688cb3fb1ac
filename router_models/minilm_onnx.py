"""MiniLM-L6 inference on ONNX Runtime: the serving encoder, with no torch in the process.

Why: torch is 0.8 GB of the serving install and ~250 MB resident per scoring replica, for
a 6-layer encoder. The graph is built here from the safetensors weights (``onnx.helper``),
so artifacts stay as they are (fine-tuned layers as weight overrides) and nothing is
exported by torch. A numpy version of the same arithmetic was measured 2-3x slower than
torch's int8 encoder on this 2-core machine (docs/routing.md); ONNX Runtime runs the
integer products in MLAS's u8s8 kernels.

int8 (``quantize``) mirrors ``torch.ao.quantization.quantize_dynamic`` on x86 (fbgemm),
the numerics the shipped routers were trained against:
- weights: per-tensor symmetric int8, ``scale = max|w| / 127.5``, ``q = rint(w / scale)``;
- activations: per-tensor affine uint8 with ``reduce_range`` (0..127), scale and zero
  point from the input's min and max (always including 0), recomputed on every call;
- ``y = (sum_k (qx - zx) * qw) * sx * sw + b`` (``MatMulInteger``, int32 accumulation).
Attention, LayerNorm, GELU and pooling stay float32, as in the torch model. Per-tensor
dynamic scales make an encoder's output sensitive to the last bit of every float
operation (a changed maximum re-rounds a whole tensor), so no two implementations (nor
torch on two CPUs) agree bit for bit; ``tests/unit/router_models/test_minilm_onnx.py``
bounds the distance to torch's int8 embeddings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

_F32 = np.float32
_OPSET = 17  # LayerNormalization


def quantize_weight(w: np.ndarray) -> tuple[np.ndarray, float]:
    """(int8 values, scale) of a weight, as torch's per-tensor symmetric ``MinMaxObserver``."""
    w = np.asarray(w, dtype=_F32)
    scale = max(_F32(np.abs(w).max()) / _F32(127.5), _F32(np.finfo(_F32).eps))
    q = np.clip(np.rint(w * (_F32(1.0) / _F32(scale))), -128, 127).astype(np.int8)
    return q, float(scale)


class _Graph:
    """Accumulates nodes and initialisers; names are generated, so a layer is a few calls."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def const(self, value: np.ndarray | float | int, dtype: Any = _F32) -> str:
        from onnx import numpy_helper

        self._n += 1
        name = f"c{self._n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, kind: str, *inputs: str, **attrs: Any) -> str:
        return self.ops(kind, *inputs, n=1, **attrs)[0]

    def ops(self, kind: str, *inputs: str, n: int, **attrs: Any) -> list[str]:
        """A node with ``n`` outputs."""
        from onnx import helper

        outs = [f"t{self._n + 1 + i}" for i in range(n)]
        self._n += n
        self.nodes.append(helper.make_node(kind, list(inputs), outs, **attrs))
        return outs

    def linear(self, x: str, w: np.ndarray, b: np.ndarray, quantize: bool) -> str:
        """``x @ w.T + b``; int8: quantise ``x`` per call with torch's dynamic parameters."""
        return self.linears(x, [(w, b)], quantize)[0]

    def linears(self, x: str, wb: list[tuple[np.ndarray, np.ndarray]], quantize: bool) -> list[str]:
        """Several Linears of one input as one product (Q, K and V): fewer, larger kernels.

        int8: torch quantises the shared input identically for each, so quantising it once
        is exact; each weight keeps its own scale (a per-column scale vector).
        """
        bias = self.const(np.concatenate([b for _, b in wb]))
        if quantize:
            quantized = [quantize_weight(w) for w, _ in wb]
            wq = np.concatenate([q for q, _ in quantized]).T
            w_scale = np.concatenate([np.full(len(q), s, _F32) for q, s in quantized])
            xq, zp, x_scale = self._quantize_input(x)
            acc = self.op("MatMulInteger", xq, self.const(np.ascontiguousarray(wq), np.int8), zp)
            y = self.op("Mul", self.op("Cast", acc, to=1), self.op("Mul", x_scale, self.const(w_scale)))
        else:
            y = self.op("MatMul", x, self.const(np.ascontiguousarray(np.concatenate([w for w, _ in wb]).T)))
        y = self.op("Add", y, bias)
        if len(wb) == 1:
            return [y]
        return self.ops("Split", y, self.const(np.array([len(b) for _, b in wb]), np.int64), n=len(wb), axis=-1)

    def _quantize_input(self, x: str) -> tuple[str, str, str]:
        """(uint8 values, zero point, scale) of ``x``: fbgemm's dynamic uint8 with reduce_range."""
        zero = self.const(0.0)
        lo = self.op("Min", self.op("ReduceMin", x, keepdims=0), zero)
        hi = self.op("Max", self.op("ReduceMax", x, keepdims=0), zero)
        span = self.op("Sub", self.op("Cast", hi, to=11), self.op("Cast", lo, to=11))  # double, as fbgemm
        scale = self.op("Cast", self.op("Div", span, self.const(127.0, np.float64)), to=1)
        scale = self.op("Max", scale, self.const(1e-12))
        zp_f = self.op("Clip", self.op("Round", self.op("Div", self.op("Neg", lo), scale)),
                       self.const(0.0), self.const(127.0))
        # round(x * (1/scale) + zp) with one rounding, as fbgemm's fused multiply-add: in double
        inv = self.op("Cast", self.op("Reciprocal", scale), to=11)
        shifted = self.op("Add", self.op("Mul", self.op("Cast", x, to=11), inv), self.op("Cast", zp_f, to=11))
        xq = self.op("Cast", self.op("Clip", self.op("Round", shifted), self.const(0.0, np.float64),
                                     self.const(255.0, np.float64)), to=2)
        return xq, self.op("Cast", zp_f, to=2), scale

    def layer_norm(self, x: str, w: Mapping[str, np.ndarray], name: str, eps: float) -> str:
        return self.op("LayerNormalization", x, self.const(w[f"{name}.weight"]), self.const(w[f"{name}.bias"]),
                       axis=-1, epsilon=eps)


def _attention(g: _Graph, x: str, w: Mapping[str, np.ndarray], p: str, bias: str, heads: int, d: int,
               quantize: bool) -> str:
    names = ("attention.self.query", "attention.self.key", "attention.self.value")
    split = g.const(np.array([0, 0, heads, d // heads]), np.int64)
    q, k, v = (g.op("Transpose", g.op("Reshape", y, split), perm=[0, 2, 1, 3])
               for y in g.linears(x, [(w[f"{p}{n}.weight"], w[f"{p}{n}.bias"]) for n in names], quantize))
    scores = g.op("Mul", g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2])), g.const(1 / np.sqrt(d // heads)))
    probs = g.op("Softmax", g.op("Add", scores, bias), axis=-1)
    ctx = g.op("Transpose", g.op("MatMul", probs, v), perm=[0, 2, 1, 3])
    return g.op("Reshape", ctx, g.const(np.array([0, 0, d]), np.int64))


def _layer(g: _Graph, x: str, w: Mapping[str, np.ndarray], i: int, bias: str, cfg: Mapping[str, Any],
           quantize: bool) -> str:
    p, d, eps = f"encoder.layer.{i}.", int(cfg["hidden_size"]), float(cfg["layer_norm_eps"])
    ctx = _attention(g, x, w, p, bias, int(cfg["num_attention_heads"]), d, quantize)
    out = g.linear(ctx, w[f"{p}attention.output.dense.weight"], w[f"{p}attention.output.dense.bias"], quantize)
    x = g.layer_norm(g.op("Add", x, out), w, f"{p}attention.output.LayerNorm", eps)
    h = g.linear(x, w[f"{p}intermediate.dense.weight"], w[f"{p}intermediate.dense.bias"], quantize)
    gelu = g.op("Mul", g.op("Mul", h, g.const(0.5)),  # exact (erf) GELU, as BERT's "gelu"
                g.op("Add", g.const(1.0), g.op("Erf", g.op("Mul", h, g.const(1 / np.sqrt(2.0))))))
    out = g.linear(gelu, w[f"{p}output.dense.weight"], w[f"{p}output.dense.bias"], quantize)
    return g.layer_norm(g.op("Add", x, out), w, f"{p}output.LayerNorm", eps)


def build_model(cfg: Mapping[str, Any], w: Mapping[str, np.ndarray], quantize: bool) -> Any:
    """The encoder as an ONNX ``ModelProto``: (ids, positions, key bias) -> last hidden state."""
    from onnx import TensorProto, helper

    g = _Graph()
    emb = g.op("Add", g.op("Gather", g.const(w["embeddings.word_embeddings.weight"]), "input_ids"),
               g.op("Gather", g.const(w["embeddings.position_embeddings.weight"]), "positions"))
    emb = g.op("Add", emb, g.const(w["embeddings.token_type_embeddings.weight"][0]))
    x = g.layer_norm(emb, w, "embeddings.LayerNorm", float(cfg["layer_norm_eps"]))
    for i in range(int(cfg["num_hidden_layers"])):
        x = _layer(g, x, w, i, "key_bias", cfg, quantize)
    g.nodes.append(helper.make_node("Identity", [x], ["hidden"]))
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "t"]),
              helper.make_tensor_value_info("positions", TensorProto.INT64, ["t"]),
              helper.make_tensor_value_info("key_bias", TensorProto.FLOAT, ["b", 1, 1, "t"])]
    outputs = [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["b", "t", int(cfg["hidden_size"])])]
    graph = helper.make_graph(g.nodes, "minilm", inputs, outputs, g.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)], ir_version=9)


class OnnxMiniLM:
    """``encode(ids, mask) -> (b, t, d)`` last hidden state, on an ONNX Runtime CPU session."""

    def __init__(self, model: Any, num_threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = num_threads or 0
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # warnings about unused initialisers are not actionable
        self._session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    def encode(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        t = ids.shape[1]
        bias = ((1.0 - mask[:, None, None, :].astype(_F32)) * np.finfo(_F32).min).astype(_F32)
        feeds = {"input_ids": ids.astype(np.int64, copy=False), "positions": np.arange(t, dtype=np.int64),
                 "key_bias": bias}
        return self._session.run(["hidden"], feeds)[0]  # type: ignore[no-any-return]


def load_onnx_minilm(
    model_dir: Path, overrides: Mapping[str, np.ndarray] | None = None, *, quantize: bool = True,
    num_threads: int | None = None,
) -> OnnxMiniLM:
    """Build from ``config.json`` and ``model.safetensors``; ``overrides`` replace weights of the same shape."""
    from safetensors.numpy import load_file

    cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if cfg.get("model_type") != "bert" or cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{model_dir}: not a BERT encoder with absolute positions")
    state = {k: v for k, v in load_file(str(model_dir / "model.safetensors")).items() if not k.startswith("pooler.")}
    for key, value in (overrides or {}).items():
        if key not in state or tuple(state[key].shape) != tuple(value.shape):
            raise ValueError(f"encoder override {key!r} {tuple(value.shape)} does not match a MiniLM weight")
        state[key] = np.asarray(value, dtype=state[key].dtype)
    try:
        model = build_model(cfg, state, quantize)
    except KeyError as err:
        raise ValueError(f"{model_dir}: weights do not match MiniLM (missing {err})") from None
    return OnnxMiniLM(model, num_threads)
