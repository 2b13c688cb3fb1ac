"""Routing data shipped with RouteIQ and its loader.

``routing/`` holds the per-query correctness of 9 open LLMs and their prices, taken
from ulab-uiuc/LLMRouter (MIT licence, see ``routing/LICENSE.LLMRouter`` and
``routing/README.md``). The loader reads it into plain numpy arrays so that training
and evaluation never depend on pandas or on llmrouter's own data layout.
"""

from router_models.data.loader import (
    DEFAULT_CANDIDATES,
    DEFAULT_TEST,
    DEFAULT_TRAIN,
    RoutingData,
    file_sha256,
    load_prices,
    load_routing_data,
)

__all__ = [
    "DEFAULT_CANDIDATES",
    "DEFAULT_TEST",
    "DEFAULT_TRAIN",
    "RoutingData",
    "file_sha256",
    "load_prices",
    "load_routing_data",
]
