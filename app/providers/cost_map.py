"""litellm's bundled price and context-window map, read without importing litellm.

``import litellm`` costs seconds and ~100 MB; the ingress only needs its data file
(``model_prices_and_context_window_backup.json``, shipped inside the wheel, the same
file litellm itself reads with ``LITELLM_LOCAL_MODEL_COST_MAP=True``). It is located
with ``importlib.util.find_spec`` (which does not import the package) and parsed once
per process, on first use. Without litellm installed the map is empty.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import orjson

FILE = "model_prices_and_context_window_backup.json"


@functools.cache
def cost_map() -> dict[str, dict[str, Any]]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / FILE
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def model_info(model: str) -> dict[str, Any]:
    """The map's entry for a litellm model string (``openai/gpt-4o`` or ``gpt-4o``), or ``{}``."""
    table = cost_map()
    return table.get(model) or table.get(model.split("/", 1)[-1]) or {}


CAPABILITY_FLAGS = {
    "supports_function_calling": "tools", "supports_vision": "vision", "supports_response_schema": "json"}
"""The map's flags, as the capability names requests are checked against (``catalog.required_capabilities``)."""


def capabilities(model: str) -> frozenset[str]:
    """What the map says a model supports, as RouteIQ's capability names."""
    info = model_info(model)
    return frozenset(name for flag, name in CAPABILITY_FLAGS.items() if info.get(flag) is True)


def context_window(model: str) -> int:
    """The map's input context window (``max_input_tokens``, else ``max_tokens``); 0 when unknown."""
    info = model_info(model)
    value = info.get("max_input_tokens") or info.get("max_tokens")
    return value if isinstance(value, int) and value > 0 else 0
