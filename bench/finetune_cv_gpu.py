"""Exploration that chose the fine-tuned router: 3 CV splits x 5 folds on a GPU (train only).

Run on a lent H100 (docs/routing.md, "How the fine-tuned router was chosen"). Not part of
the product: ``routeiq train --router finetuned`` is the CPU implementation of record, and
its own 5-fold CV is what the manifest reports. Steps:

1. here: ``python -m bench.finetune_cv_gpu prepare .gpu`` writes the token ids, masks and
   scores of train.jsonl (the embedder's tokenisation, 128 tokens) and a float16 copy of
   MiniLM (to fit the device tool's 64 MiB transfer);
2. there: ``cd .gpu && OUT=... python3 finetune_cv_gpu.py full top2 top2x3`` (the file copied in);
3. here: compare the returned out-of-fold predictions with the frozen-embedder routers on
   the same folds (``np.random.default_rng(split).permutation``, splits 0-2).

Each fold fine-tunes MiniLM (``full``: all layers, lr 3e-5; ``top2``: layers 4-5, lr 5e-5)
with an MLP head (384-256-9, dropout 0.2, lr 1e-3), BCE per model, AdamW, 4 epochs, batch
32, fp32; it saves the head's predictions and a k=80 KNN over the tuned embeddings.
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
    weights = load_file(str(model_dir() / "model.safetensors"))
    save_file({k: v.half().contiguous() for k, v in weights.items()}, f"{out}/model.safetensors")
    shutil.copy(model_dir() / "config.json", f"{out}/config.json")
    shutil.copy(__file__, f"{out}/finetune_cv_gpu.py")
    shutil.copy(os.path.join(os.path.dirname(__file__), "..", "router_models", "minilm.py"), f"{out}/minilm.py")
    data = load_routing_data("router_models/data/routing/train.jsonl")
    emb = Embedder(EmbedderConfig())
    enc = emb.tokenizer.encode_batch([emb.clip(q) for q in data.queries])
    np.save(f"{out}/ids.npy", np.array([e.ids for e in enc], np.int32))
    np.save(f"{out}/mask.npy", np.array([e.attention_mask for e in enc], np.int8))
    np.save(f"{out}/y.npy", data.scores.astype(np.float32))


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
    N = len(Y)

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

    def run(fit, held, variant, seed, epochs=4):
        torch.manual_seed(seed)
        net = Net().to(dev)
        if variant == "top2":
            for p in net.enc.parameters():
                p.requires_grad = False
            for layer in net.enc.encoder.layer[4:]:
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
                loss = torch.nn.functional.binary_cross_entropy_with_logits(net(ids[b], mask[b]), Y[b])
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
        np.savez(f"{OUT}/oof_{variant}.npz", **res)


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2])
    else:
        main(sys.argv[1:])
