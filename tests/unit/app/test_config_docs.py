"""docs/configuration.md must name every key of GatewayConfig (so the doc stays true)."""

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


def _keys(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    seen = seen or set()
    if model in seen:
        return set()
    seen.add(model)
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(field.alias or name)
        for sub in _models(field.annotation):
            keys |= _keys(sub, seen)
    return keys


def test_every_config_key_is_documented() -> None:
    missing = sorted(k for k in _keys(GatewayConfig) if f"`{k}" not in DOC and f".{k}`" not in DOC)
    assert missing == []
