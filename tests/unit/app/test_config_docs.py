"""Every key of GatewayConfig has a description and is named in docs/configuration.md (so the doc stays true)."""

from __future__ import annotations

from pathlib import Path
from types import UnionType
from typing import Union, get_args, get_origin

from pydantic import BaseModel

from app.config import GatewayConfig

DOC = (Path(__file__).resolve().parents[3] / "docs/configuration.md").read_text()


def _models(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (Union, UnionType, tuple, list, dict) or get_args(annotation):
        return [m for arg in get_args(annotation) for m in _models(arg)]
    return []


def _reachable(model: type[BaseModel], seen: list[type[BaseModel]] | None = None) -> list[type[BaseModel]]:
    """``model`` and every model its fields hold, however nested (tuples, dicts, unions)."""
    seen = [] if seen is None else seen
    if model not in seen:
        seen.append(model)
        for field in model.model_fields.values():
            for sub in _models(field.annotation):
                _reachable(sub, seen)
    return seen


def _keys(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for m in _reachable(model) for name, field in m.model_fields.items()}


def test_every_config_key_is_documented() -> None:
    missing = sorted(k for k in _keys(GatewayConfig) if f"`{k}" not in DOC and f".{k}`" not in DOC)
    assert missing == []


def test_every_config_field_has_a_description() -> None:
    models = _reachable(GatewayConfig)
    assert {m.__name__ for m in models} >= {"ModelEntry", "LiteLLMParams", "RouterAlias", "DecisionLogSettings"}
    missing = [f"{m.__name__}.{name}" for m in models for name, field in m.model_fields.items()
               if not (field.description or "").strip()]
    assert missing == []
