"""Bridge to llmrouter-lib: its routers, fed our data and our MiniLM embedder.

llmrouter routers are built from a YAML file whose ``data_path`` entries point at its own
file layout (``routing_data_train`` one row per (query, model), ``query_embedding_data`` a
tensor indexed by ``embedding_id``, ``llm_data``). ``build_router`` writes that layout into
a temporary workspace from a ``RoutingData`` split and precomputed embeddings, then
instantiates the library class, so its config handling and data loader run unchanged.

Its default embedder (Longformer from the hub) cannot be fetched offline: every router
module imports ``get_longformer_embedding`` by name, so ``use_embedder`` replaces that
name in each module with our MiniLM embedder (384 dims).

Only training imports this module: ``import llmrouter`` costs 7-9 s and ~700 MB.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from router_models.data import RoutingData
from router_models.embedding import Embedder

_ROUTER_MODULES = (
    "llmrouter.models.knnrouter.router",
    "llmrouter.models.mlprouter.router",
    "llmrouter.models.mfrouter.router",
    "llmrouter.models.mfrouter.trainer",
    "llmrouter.models.svmrouter.router",
)


def offline_env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


offline_env()  # before anything imports llmrouter (and litellm, which fetches prices otherwise)


def use_embedder(embedder: Embedder) -> None:
    """Replace ``get_longformer_embedding`` in llmrouter's router modules with MiniLM."""
    import torch

    def get_minilm_embedding(texts: str | list[str]) -> Any:
        single = isinstance(texts, str)
        arr = torch.from_numpy(embedder.embed([texts] if single else list(texts)))
        return arr[0] if single else arr

    offline_env()
    for name in _ROUTER_MODULES:
        module = importlib.import_module(name)
        module.get_longformer_embedding = get_minilm_embedding


def write_workspace(root: Path, data: RoutingData, embeddings: np.ndarray, hparam: dict[str, Any]) -> Path:
    """Write llmrouter's data layout and YAML config under ``root``; return the YAML path."""
    import torch
    import yaml

    rows = root / "routing_train.jsonl"
    with open(rows, "w", encoding="utf-8") as fh:
        for i, (query, scores) in enumerate(zip(data.queries, data.scores, strict=True)):
            for model, perf in zip(data.models, scores, strict=True):
                # An unobserved score (NaN, partial labels) as 0: the library only builds the
                # router's config and network here; our own loops train, masking it out.
                rec = {"query": query, "model_name": model, "performance": float(np.nan_to_num(perf)),
                       "embedding_id": i}
                fh.write(json.dumps(rec) + "\n")
    # torch.save of a plain tensor, written and read by us only inside this temp dir.
    torch.save(torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32)), root / "emb.pt")
    llm_data = {m: {"model": m, "price": float(p)} for m, p in zip(data.models, data.prices, strict=True)}
    (root / "llm.json").write_text(json.dumps(llm_data), encoding="utf-8")
    cfg = {
        "data_path": {
            "routing_data_train": str(rows),
            "query_embedding_data": str(root / "emb.pt"),
            "llm_data": str(root / "llm.json"),
        },
        "hparam": hparam,
        "model_path": {
            # Our trainers never save through the library (it would write .pkl/.pt).
            "ini_model_path": str(root / "ini.none"),
            "save_model_path": str(root / "saved.pt"),
            "load_model_path": str(root / "saved.pt"),
        },
        "metric": {"weights": {"performance": 1.0}},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def build_router(cls_name: str, data: RoutingData, embeddings: np.ndarray, hparam: dict[str, Any]) -> Any:
    """Instantiate ``llmrouter.models.<cls_name>`` on our data (workspace is temporary)."""
    offline_env()
    import contextlib
    import io

    models = importlib.import_module("llmrouter.models")
    cls = getattr(models, cls_name)
    with tempfile.TemporaryDirectory(prefix="routeiq-llmrouter-") as tmp:
        yaml_path = write_workspace(Path(tmp), data, embeddings, hparam)
        with contextlib.redirect_stdout(io.StringIO()):  # the library prints banners
            router = cls(str(yaml_path))
    return router
