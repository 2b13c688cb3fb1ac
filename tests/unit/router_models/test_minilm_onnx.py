"""The serving encoder (ONNX Runtime) against the torch model the routers were trained with.

fp32 must match torch to float precision; int8 must reproduce torch's dynamic
quantisation per layer exactly up to rounding, and its embeddings closely (per-tensor
scales amplify last-bit differences across layers; see ``minilm_onnx``'s docstring).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from router_models.data import DEFAULT_TEST, load_routing_data
from router_models.embedding import Embedder, EmbedderConfig, model_dir
from router_models.minilm import load_minilm, mean_pool
from router_models.minilm_onnx import OnnxMiniLM, _Graph, load_onnx_minilm, quantize_weight


def _torch_int8(model: torch.nn.Module) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def _tokens(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    tok = Embedder(EmbedderConfig(quantize=False)).tokenizer
    enc = tok.encode_batch(texts)
    return np.array([e.ids for e in enc]), np.array([e.attention_mask for e in enc])


def test_fp32_hidden_states_match_torch_on_a_padded_batch() -> None:
    ids, mask = _tokens(["short", "a longer question about the price of routing across nine models " * 3])
    ours = load_onnx_minilm(model_dir(), quantize=False).encode(ids, mask)
    with torch.inference_mode():
        ref = load_minilm(model_dir())(torch.tensor(ids), torch.tensor(mask)).numpy()
    real = mask.astype(bool)
    np.testing.assert_allclose(ours[real], ref[real], atol=1e-4)


def test_int8_weights_are_torchs() -> None:
    dense = load_minilm(model_dir()).encoder.layer[0].intermediate.dense
    q, scale = quantize_weight(dense.weight.detach().numpy())
    packed = _torch_int8(torch.nn.Sequential(dense))[0].weight()
    assert scale == pytest.approx(packed.q_scale(), rel=1e-7)
    assert np.array_equal(q, packed.int_repr().numpy())


@pytest.mark.parametrize("shift", [0.0, 3.0, -3.0])
def test_an_int8_linear_computes_what_torchs_does(shift: float) -> None:
    """Inputs of mixed sign, all positive and all negative: zero point at either end."""
    dense = load_minilm(model_dir()).encoder.layer[0].intermediate.dense
    x = np.random.default_rng(0).standard_normal((1, 17, 384)).astype(np.float32) + np.float32(shift)
    with torch.inference_mode():
        ref = _torch_int8(torch.nn.Sequential(dense))(torch.from_numpy(x)).numpy()
    ours = _run_linear(x, dense.weight.detach().numpy(), dense.bias.detach().numpy())
    np.testing.assert_allclose(ours, ref, atol=2e-5)


def _run_linear(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    from onnx import TensorProto, helper

    g = _Graph()
    g.nodes.append(helper.make_node("Identity", [g.linear("x", w, b, quantize=True)], ["y"]))
    graph = helper.make_graph(g.nodes, "linear", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], g.inits)
    model = OnnxMiniLM(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9))
    return model._session.run(["y"], {"x": x})[0]  # type: ignore[no-any-return]


def test_int8_embeddings_stay_close_to_torchs() -> None:
    """Real queries, each alone (as served): cosine to torch's int8 embedding."""
    queries = load_routing_data(DEFAULT_TEST).queries[:60]
    embedder = Embedder(EmbedderConfig())
    ref_model = _torch_int8(load_minilm(model_dir()))
    cos = []
    for q in queries:
        ids, mask = _tokens([embedder.clip(q)])
        with torch.inference_mode():
            t_ids, t_mask = torch.tensor(ids), torch.tensor(mask)
            ref = mean_pool(ref_model(t_ids, t_mask), t_mask).numpy()[0]
        cos.append(float(embedder.embed([q])[0] @ ref))
    assert np.mean(cos) > 0.99 and min(cos) > 0.95, (np.mean(cos), min(cos))
