"""What a trainer produces: named weight arrays plus JSON parameters.

Kept free of torch and llmrouter so that artifacts can be written and read, and
predictions made, from arrays alone (see ``router_models.inference.scorers``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from router_models.embedding import EmbedderConfig


@dataclass
class TrainedScorer:
    """A fitted per-model quality predictor, ready to be saved as an artifact."""

    router_type: str
    tensors: dict[str, np.ndarray]
    params: dict[str, object] = field(default_factory=dict)
    """JSON-serialisable hyperparameters needed at inference (k, activation, ...)."""
    library: str = ""
    """The llmrouter class(es) this was trained with, for the manifest."""
    embedder: EmbedderConfig | None = None
    """Set when training changed the embedder (fine-tuned layers); else the pipeline's."""
