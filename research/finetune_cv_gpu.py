"""Exploration that chose the fine-tuned router: 3 CV splits x 5 folds on a GPU (train only).

Run on a lent H100 (research/routing-history.md, "How the fine-tuned router was chosen"). Not part of
the product: ``routeiq train --router finetuned`` is the CPU implementation of record, and
its own 5-fold CV is what the manifest reports. Steps:

1. here: ``python -m research.finetune_cv_gpu prepare .gpu`` writes the token ids, masks and
   scores of train.jsonl (the embedder's tokenisation, 128 tokens) and a float16 copy of
   MiniLM with only the vocabulary rows train.jsonl uses (to fit the device tool's 64 MiB transfer);
2. there: ``cd .gpu && OUT=... python3 finetune_cv_gpu.py full top2 top2x3`` (the file copied in;
   one process per variant can share the GPU);
3. here: compare the returned out-of-fold predictions with the frozen-embedder routers on
   the same folds (``np.random.default_rng(split).permutation``, splits 0-2).

Each fold fine-tunes MiniLM (``full``: all layers, lr 3e-5; ``top2``: layers 4-5, lr 5e-5)
with an MLP head (384-256-9, dropout 0.2, lr 1e-3), BCE per model, AdamW, 4 epochs, batch
32, fp32; it saves the head's predictions and a k=80 KNN over the tuned embeddings.

The second round (2026-11-27) added decision-aware losses on top of the BCE (``top2pair``,
``top2dec``) and a third tuned layer (``top3``), each run beside ``top2`` in the same call. Rule set before
the run: a variant goes on to the CPU pipeline only if, against ``top2`` on the same folds,
it is better on both metrics in the mean of the 3 splits and on C@Q_best in 2 of 3 splits.

- ``pair``: + mean over model pairs (i, j) of one query with s_i > s_j of
  (s_i - s_j) * softplus(z_j - z_i): the decision reads only differences between models.
- ``dec``: + the negative expected utility of a softmax policy over q - lambda * price
  (temperature 0.05, lambda log-uniform in [0.02, 0.5] per row): the decision itself.
"""

import json
import os
import sys
import time

import numpy as np


def prepare(out: str) -> None:
    import shutil

    from safetensors.torch import load_file, save_file

    from router_models.data import load_routing_data
    from router_models.embedding import Embedder, EmbedderConfig, model_dir

    os.makedirs(out, exist_ok=True)
    data = load_routing_data("router_models/data/routing/train.jsonl")
    emb = Embedder(EmbedderConfig())
    enc = emb.tokenizer.encode_batch([emb.clip(q) for q in data.queries])
    ids = np.array([e.ids for e in enc], np.int32)
    # Only the rows of the word embeddings that train.jsonl uses travel (ids renumbered),
    # so the copy fits the device tool's 64 MiB transfer beside the repository.
    used = np.unique(ids)
    weights = load_file(str(model_dir() / "model.safetensors"))
    weights["embeddings.word_embeddings.weight"] = weights["embeddings.word_embeddings.weight"][used]
    save_file({k: v.half().contiguous() for k, v in weights.items()}, f"{out}/model.safetensors")
    with open(model_dir() / "config.json") as fh:
        cfg = json.load(fh)
    with open(f"{out}/config.json", "w") as fh:
        json.dump({**cfg, "vocab_size": len(used)}, fh)
    shutil.copy(__file__, f"{out}/finetune_cv_gpu.py")
    shutil.copy(os.path.join(os.path.dirname(__file__), "..", "router_models", "minilm.py"), f"{out}/minilm.py")
    np.save(f"{out}/ids.npy", np.searchsorted(used, ids).astype(np.int32))
    np.save(f"{out}/mask.npy", np.array([e.attention_mask for e in enc], np.int8))
    np.save(f"{out}/y.npy", data.scores.astype(np.float32))
    np.save(f"{out}/p.npy", data.prices.astype(np.float32))


def main(variants: list[str]) -> None:  # noqa: PLR0915 - the exploration as it ran
    import torch
    from minilm import MiniLM
    from safetensors.torch import load_file

    D = os.path.dirname(os.path.abspath(__file__))
    OUT = os.environ["OUT"]
    dev = os.environ.get("DEV", "cuda")
    with open(f"{D}/config.json") as fh:
        cfg = json.load(fh)
    base = {k: v.float() for k, v in load_file(f"{D}/model.safetensors").items() if not k.startswith("pooler.")}
    base.pop("embeddings.position_ids", None)
    ids = torch.tensor(np.load(f"{D}/ids.npy"), dtype=torch.long, device=dev)
    mask = torch.tensor(np.load(f"{D}/mask.npy"), dtype=torch.long, device=dev)
    Y = torch.tensor(np.load(f"{D}/y.npy"), device=dev)
    P = torch.tensor(np.load(f"{D}/p.npy"), device=dev)
    N = int(os.environ.get("LIMIT", len(Y)))  # LIMIT=64 DEV=cpu: a smoke test of the script
    ids, mask, Y = ids[:N], mask[:N], Y[:N]

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = MiniLM(cfg)
            self.enc.load_state_dict(base, strict=False)
            self.head = torch.nn.Sequential(
                torch.nn.Linear(384, 256), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(256, 9)
            )

        def embed(self, i, m):
            h = self.enc(i, m)
            mm = m.unsqueeze(-1).float()
            return torch.nn.functional.normalize((h * mm).sum(1) / mm.sum(1).clamp(min=1e-9), dim=-1)

        def forward(self, i, m):
            return self.head(self.embed(i, m))

    def extra_loss(z, y, kind):
        if kind == "pair":
            gap = y.unsqueeze(2) - y.unsqueeze(1)  # s_i - s_j
            w = gap.clamp(min=0)
            pair = torch.nn.functional.softplus(z.unsqueeze(2) - z.unsqueeze(1)).transpose(1, 2)  # softplus(z_j - z_i)
            return (w * pair).sum() / w.gt(0).sum().clamp(min=1)
        if kind == "dec":
            lam = torch.exp(torch.empty(len(z), 1, device=dev).uniform_(np.log(0.02), np.log(0.5)))
            pol = torch.softmax((torch.sigmoid(z) - lam * P) / 0.05, dim=1)
            return -(pol * (y - lam * P)).sum(1).mean()
        return z.new_zeros(())

    def run(fit, held, variant, seed, epochs=4):
        torch.manual_seed(seed)
        net = Net().to(dev)
        layers, kind = (variant[:4], variant[4:]) if variant.startswith("top") else (variant, "")
        if layers.startswith("top"):
            for p in net.enc.parameters():
                p.requires_grad = False
            for layer in net.enc.encoder.layer[-int(layers[3]) :]:
                for p in layer.parameters():
                    p.requires_grad = True
            elr = 5e-5
        else:
            elr = 3e-5
        opt = torch.optim.AdamW(
            [
                {"params": [p for p in net.enc.parameters() if p.requires_grad], "lr": elr},
                {"params": net.head.parameters(), "lr": 1e-3, "weight_decay": 1e-4},
            ],
            weight_decay=0.01,
        )
        fit_t = torch.tensor(fit, device=dev)
        for _ in range(epochs):
            net.train()
            perm = fit_t[torch.randperm(len(fit_t), device=dev)]
            for s in range(0, len(perm), 32):
                b = perm[s : s + 32]
                z = net(ids[b], mask[b])
                loss = torch.nn.functional.binary_cross_entropy_with_logits(z, Y[b]) + extra_loss(z, Y[b], kind)
                opt.zero_grad()
                loss.backward()
                opt.step()
        net.eval()
        with torch.no_grad():

            def emb(ix):
                return torch.cat(
                    [net.embed(ids[ix[s : s + 256]], mask[ix[s : s + 256]]) for s in range(0, len(ix), 256)]
                )

            ef, eh = emb(fit_t), emb(torch.tensor(held, device=dev))
            pred = torch.sigmoid(net.head(eh))
            sim = eh @ ef.T
            nn = sim.topk(min(80, len(ef)), dim=1).indices
            kp = Y[fit_t][nn].mean(1)
        return pred.cpu().numpy(), kp.cpu().numpy()

    for variant in variants:
        res = {}
        t = time.time()
        for sd in (0, 1, 2):
            parts = np.array_split(np.random.default_rng(sd).permutation(N), 5)
            head = np.zeros((N, 9), np.float32)
            knn = np.zeros((N, 9), np.float32)
            for f, held in enumerate(parts):
                fit = np.concatenate([p for g, p in enumerate(parts) if g != f])
                if variant.endswith("x3"):  # e.g. top2x3: the mean of 3 seeds per fold
                    outs = [run(fit, held, variant[:-2], seed=f + 100 * k) for k in range(3)]
                    head[held] = np.mean([o[0] for o in outs], 0)
                    knn[held] = np.mean([o[1] for o in outs], 0)
                else:
                    head[held], knn[held] = run(fit, held, variant, seed=f)
            res[f"head_s{sd}"] = head
            res[f"knn_s{sd}"] = knn
            print(variant, "split", sd, "done", round(time.time() - t, 1), "s", flush=True)
            np.savez(f"{OUT}/oof_{variant}.npz", **res)  # after every split: a timeout keeps the finished ones


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2])
    else:
        main(sys.argv[1:])
