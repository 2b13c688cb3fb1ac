"""The quality loss shared by the MLP and fine-tuned routers, on full or partial labels.

Both regress each model's score with a per-model binary cross-entropy on the head's
logits. A partial-label split (decision-log feedback, ``router_models.data.partial``)
scores only the served model per row: its missing scores are NaN and must not count, and
its rows carry inverse-propensity weights. On a full-label split without weights the
loss is exactly the mean BCE used before partial labels existed (same reduction, same
floating-point order), so retraining the shipped default reproduces it bit for bit.
"""

from __future__ import annotations

from typing import Any


def quality_loss(logits: Any, y: Any, weights: Any | None = None) -> Any:
    """Mean BCE over observed scores (NaN: not observed), each row weighted by ``weights``."""
    import torch
    import torch.nn.functional as F

    seen = ~torch.isnan(y)
    if weights is None and bool(seen.all()):
        return F.binary_cross_entropy_with_logits(logits, y)
    per = F.binary_cross_entropy_with_logits(logits, torch.nan_to_num(y), reduction="none")
    w = seen.to(per.dtype) * (weights[:, None] if weights is not None else 1.0)
    return (per * w).sum() / w.sum().clamp_min(1e-12)
