"""Our plain-torch MiniLM must reproduce transformers' BertModel on the same weights."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer
from transformers import BertModel

from router_models.embedding import model_dir
from router_models.minilm import load_minilm


def test_hidden_states_match_transformers() -> None:
    path = model_dir()
    ours = load_minilm(path)
    ref = BertModel.from_pretrained(str(path), add_pooling_layer=False).eval()
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    tok.enable_truncation(128)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(["short", "a longer question about the price of routing across nine models " * 3])
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc])
    with torch.inference_mode():
        a = ours(ids, mask)
        b = ref(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
    real = mask.bool()
    assert torch.allclose(a[real], b[real], atol=1e-4)
