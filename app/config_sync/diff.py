"""A readable diff of two configs: models and routers added, removed, changed (field by field).

What ``routeiq config diff OLD NEW`` prints and ``/config/sync/status`` shows for the last
change. Entries are matched by name (``model_name``; a name with several deployments
gets ``#1``, ``#2`` in file order), not by position, so inserting a model shows as one
addition. Secret-looking values (keys, store URLs, environment variables) are never
printed, only that they changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.config import GatewayConfig

_SECRET_LEAVES = ("database_url", "redis_url", "token", "password")


def diff_configs(old: GatewayConfig, new: GatewayConfig) -> list[str]:
    """One line per difference: ``+`` added, ``-`` removed, ``~`` changed; empty when equal."""
    a, b = _dump(old), _dump(new)
    lines = _named("model", _by_name(a["model_list"], "model_name"), _by_name(b["model_list"], "model_name"))
    rs_a, rs_b = a["router_settings"], b["router_settings"]
    lines += _named("router", _by_name(rs_a.pop("routers"), "name"), _by_name(rs_b.pop("routers"), "name"))
    groups_a, groups_b = ([g.model_dump(mode="json") for g in c.groups()] for c in (old, new))  # declared or implied
    lines += _named("provider group", _by_name(groups_a, "name"), _by_name(groups_b, "name"))
    for section in ("router_settings", "general_settings"):
        lines += [f"~ {section}.{path}: {change}" for path, change in _fields(a[section], b[section])]
    env_a, env_b = a["environment_variables"], b["environment_variables"]
    lines += [f"+ environment variable {n}" for n in sorted(env_b.keys() - env_a.keys())]
    lines += [f"- environment variable {n}" for n in sorted(env_a.keys() - env_b.keys())]
    lines += [f"~ environment variable {n}: changed" for n in sorted(env_a.keys() & env_b.keys())
              if env_a[n] != env_b[n]]
    return lines


def _dump(cfg: GatewayConfig) -> dict[str, Any]:
    dumped: dict[str, Any] = cfg.model_dump(mode="json", by_alias=True)
    return dumped


def _by_name(items: Iterable[dict[str, Any]], field: str) -> dict[str, dict[str, Any]]:
    """Items by name; repeated names numbered ``name#1``, ``name#2`` in order."""
    items = list(items)
    counts: dict[str, int] = {}
    for item in items:
        counts[item[field]] = counts.get(item[field], 0) + 1
    seen: dict[str, int] = {}
    out = {}
    for item in items:
        name = item[field]
        seen[name] = seen.get(name, 0) + 1
        out[f"{name}#{seen[name]}" if counts[name] > 1 else name] = item
    return out


def _named(kind: str, old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"+ {kind} {name}{_summary(new[name])}" for name in new if name not in old]
    lines += [f"- {kind} {name}" for name in old if name not in new]
    for name in (n for n in new if n in old):
        lines += [f"~ {kind} {name}: {path} {change}" for path, change in _fields(old[name], new[name])]
    return lines


def _summary(item: dict[str, Any]) -> str:
    params = item.get("litellm_params")
    if isinstance(params, dict):
        return f" ({params.get('model')}, provider group {item.get('provider_group')})"
    return ""


def _fields(old: Any, new: Any, path: str = "") -> list[tuple[str, str]]:
    """``(dotted path, "a -> b")`` for each leaf that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append((sub, f"{_show(sub, old[key])} -> (unset)"))
            elif key not in old:
                out.append((sub, f"(unset) -> {_show(sub, new[key])}"))
            else:
                out += _fields(old[key], new[key], sub)
        return out
    if old == new:
        return []
    return [(path, f"{_show(path, old)} -> {_show(path, new)}")]


def _show(path: str, value: Any) -> str:
    leaf = path.rsplit(".", 1)[-1].lower()
    if value is not None and (leaf.endswith(("_key", "secret", "password")) or leaf in _SECRET_LEAVES):
        return "(secret)"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.10g}"  # 0.1/1e6 reads 1e-07, not 1.0000000000000001e-07
    return repr(value) if isinstance(value, str) else str(value)
