"""A minimal BERT encoder in plain torch, for fine-tuning MiniLM-L6 (training only).

Serving runs the same encoder on ONNX Runtime (``minilm_onnx``), without torch. Why not
``transformers.BertModel`` here: a 6-layer encoder fits in the 60 lines below, and
fine-tuning needs ``run_layers`` (the frozen lower layers run once). Module names mirror
the checkpoint's keys so the safetensors file loads as-is.
``tests/unit/router_models/test_minilm.py`` checks the output against transformers.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class _SelfAttention(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)


class _DenseNorm(nn.Module):
    def __init__(self, d_in: int, d_out: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        self.LayerNorm = nn.LayerNorm(d_out, eps=eps)


class _Attention(nn.Module):
    def __init__(self, d: int, eps: float) -> None:
        super().__init__()
        self.self = _SelfAttention(d)
        self.output = _DenseNorm(d, d, eps)


class _Intermediate(nn.Module):
    def __init__(self, d: int, ff: int) -> None:
        super().__init__()
        self.dense = nn.Linear(d, ff)


class _Layer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.attention = _Attention(d, eps)
        self.intermediate = _Intermediate(d, ff)
        self.output = _DenseNorm(ff, d, eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x.shape
        att = self.attention.self

        def split(z: torch.Tensor) -> torch.Tensor:
            return z.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        ctx = F.scaled_dot_product_attention(split(att.query(x)), split(att.key(x)), split(att.value(x)), mask)
        ctx = ctx.transpose(1, 2).reshape(b, t, d)
        x = self.attention.output.LayerNorm(x + self.attention.output.dense(ctx))
        h = F.gelu(self.intermediate.dense(x))  # exact (erf) GELU, as BERT's "gelu"
        return self.output.LayerNorm(x + self.output.dense(h))


class _Embeddings(nn.Module):
    def __init__(self, vocab: int, d: int, max_pos: int, types: int, eps: float) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, d)
        self.position_embeddings = nn.Embedding(max_pos, d)
        self.token_type_embeddings = nn.Embedding(types, d)
        self.LayerNorm = nn.LayerNorm(d, eps=eps)


class _Encoder(nn.Module):
    def __init__(self, layers: list[_Layer]) -> None:
        super().__init__()
        self.layer = nn.ModuleList(layers)


class MiniLM(nn.Module):
    """``forward(ids, mask) -> last hidden state`` (token type 0, absolute positions)."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        d, eps = cfg["hidden_size"], cfg["layer_norm_eps"]
        self.embeddings = _Embeddings(cfg["vocab_size"], d, cfg["max_position_embeddings"], cfg["type_vocab_size"], eps)
        layers = [
            _Layer(d, cfg["num_attention_heads"], cfg["intermediate_size"], eps)
            for _ in range(cfg["num_hidden_layers"])
        ]
        self.encoder = _Encoder(layers)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.run_layers(self.embed_tokens(ids), attention_mask, 0, len(self.encoder.layer))

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """Token + position + type-0 embeddings, layer-normed: the input of layer 0."""
        emb = self.embeddings
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = emb.word_embeddings(ids) + emb.position_embeddings(pos)[None] + emb.token_type_embeddings.weight[0]
        return emb.LayerNorm(x)

    def run_layers(self, x: torch.Tensor, attention_mask: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Hidden states after layers ``start..stop-1`` (fine-tuning runs the frozen ones once)."""
        mask = None
        if not bool(attention_mask.all()):  # padded batch: large negative bias on padding keys
            mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.encoder.layer[start:stop]:
            x = layer(x, mask)
        return x


def load_minilm(model_dir: Path, overrides: dict[str, torch.Tensor] | None = None) -> MiniLM:
    """Build from ``config.json`` and load ``model.safetensors``; every encoder weight must be present.

    ``overrides`` replaces some of those weights (a fine-tuned router's top layers); each
    key must name an existing weight of the same shape.
    """
    from safetensors.torch import load_file

    cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if cfg.get("model_type") != "bert" or cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{model_dir}: not a BERT encoder with absolute positions")
    model = MiniLM(cfg)
    state = {k: v for k, v in load_file(str(model_dir / "model.safetensors")).items() if not k.startswith("pooler.")}
    state.pop("embeddings.position_ids", None)
    for key, value in (overrides or {}).items():
        if key not in state or tuple(state[key].shape) != tuple(value.shape):
            raise ValueError(f"encoder override {key!r} {tuple(value.shape)} does not match a MiniLM weight")
        state[key] = value.to(state[key].dtype)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{model_dir}: weights do not match MiniLM (missing {missing}, unexpected {unexpected})")
    return model.eval()


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the unmasked token states, L2-normalised (sentence-transformers pooling)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return F.normalize((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9), p=2, dim=-1)
