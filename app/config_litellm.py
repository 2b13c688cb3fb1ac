"""LiteLLM proxy config files, read as RouteIQ config: the translation before validation.

A LiteLLM ``config.yaml`` carries keys RouteIQ's typed config does not have
(``litellm_settings``, ``environment_variables``, ``router_settings.cooldown_time``, a
deployment's top-level ``rpm``/``tpm``...). ``translate`` runs on the raw YAML before
``GatewayConfig`` validates it, and returns the document in RouteIQ's shape plus two
lists: **warnings** (a LiteLLM key with no meaning here, one line each naming it; the
loader logs each once at start-up) and **problems** (a value that is wrong, reported
with every other problem of the file). Keys RouteIQ implements are moved to where
RouteIQ reads them; a key neither side knows is left in place, so validation still
fails on it (a typo stays an error).

Must not: import litellm, or guess a meaning for a key it does not know.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

LITELLM_SETTINGS_MOVED = {
    "num_retries": ("router_settings", "num_retries"),
    "request_timeout": ("general_settings", "request_timeout_s"),
    "fallbacks": ("router_settings", "fallbacks"),
    "context_window_fallbacks": ("router_settings", "context_window_fallbacks"),
    "content_policy_fallbacks": ("router_settings", "content_policy_fallbacks"),
}
"""``litellm_settings`` keys RouteIQ implements, and where it reads them (the RouteIQ key,
when also set, wins: it is the more specific)."""

ROUTER_SETTINGS_IGNORED = frozenset({
    "redis_host", "redis_port", "redis_password", "redis_url", "enable_pre_call_checks",
    "retry_policy", "allowed_fails_policy", "default_litellm_params", "provider_budget_config", "cache_responses",
    "routing_strategy_args", "enable_tag_filtering", "default_max_parallel_requests", "disable_cooldowns",
    "set_verbose", "debug_level", "optional_pre_call_checks", "polling_interval", "default_fallbacks",
    "model_group_retry_policy", "retry_after", "stream_timeout", "max_fallbacks", "caching_groups",
    "client_ttl", "cache_kwargs", "default_priority", "alerting_config", "router_general_settings",
    "enable_health_check_routing", "ignore_invalid_deployments", "model_group_affinity_config",
})
"""LiteLLM ``router_settings`` keys with no meaning in RouteIQ (Redis comes from
``general_settings.redis_url``; pre-call checks always run): accepted, with a warning."""

GENERAL_SETTINGS_IGNORED = frozenset({
    "alerting", "alerting_threshold", "alert_types", "alert_to_webhook_url", "store_model_in_db",
    "store_prompts_in_spend_logs", "disable_spend_logs", "disable_master_key_return", "disable_reset_budget",
    "disable_adding_master_key_hash_to_db", "enable_jwt_auth", "litellm_jwtauth", "proxy_batch_write_at",
    "database_connection_pool_limit", "database_connection_timeout", "allow_requests_on_db_unavailable",
    "custom_auth", "max_parallel_requests", "global_max_parallel_requests", "infer_model_from_keys",
    "background_health_checks", "health_check_interval", "health_check_details", "use_redis_transaction_buffer",
    "forward_client_headers_to_llm_api", "allowed_routes", "admin_only_routes", "ui_access_mode",
    "maximum_spend_logs_retention_period", "maximum_spend_logs_retention_interval", "proxy_budget_rescheduler_min_time",
    "proxy_budget_rescheduler_max_time", "disable_prisma_schema_update", "pass_through_endpoints",
    "enforce_user_param", "user_header_name", "key_management_system", "key_management_settings",
    "use_x_forwarded_for", "service_account_settings", "disable_retry_on_max_parallel_request_limit_error",
})
"""LiteLLM ``general_settings`` keys with no meaning in RouteIQ: accepted, with a warning."""

TOP_LEVEL_IGNORED = frozenset({
    "callback_settings", "guardrails", "credential_list", "mcp_servers", "files_settings", "finetune_settings",
    "assistant_settings", "search_tools", "vector_store_registry", "prompts",
})
"""Top-level LiteLLM sections RouteIQ has no counterpart for: accepted, with a warning."""


@dataclass
class Translation:
    """The document in RouteIQ's shape, what it dropped (warnings) and what is wrong (problems)."""

    raw: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    """``environment_variables`` as given (values as strings)."""


def translate(raw: dict[str, Any]) -> Translation:
    """The LiteLLM keys of ``raw`` turned into RouteIQ's (``raw`` itself is not changed)."""
    out = Translation(_copy(raw))
    doc = out.raw
    _environment(doc, out)
    _litellm_settings(doc, out)
    _router_settings(doc, out)
    _general_settings(doc, out)
    _model_list(doc, out)
    for key in sorted(TOP_LEVEL_IGNORED & doc.keys()):
        del doc[key]
        out.warnings.append(f"{key}: LiteLLM section with no meaning in RouteIQ; ignored")
    return out


def _copy(node: Any) -> Any:
    """The mappings and lists of a parsed document copied (leaves shared: they are not changed)."""
    if isinstance(node, dict):
        return {k: _copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy(v) for v in node]
    return node


def apply_environment(values: dict[str, str]) -> dict[str, str]:
    """Set each variable that is **not already set** (the process environment wins: a
    Kubernetes Secret overrides the file), and return the values in effect for them."""
    for name, value in values.items():
        os.environ.setdefault(name, value)
    return {name: os.environ[name] for name in values}


def _section(doc: dict[str, Any], name: str, out: Translation) -> dict[str, Any] | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        out.problems.append(f"{name}: expected a mapping")
        return None
    return value


def _environment(doc: dict[str, Any], out: Translation) -> None:
    env = _section(doc, "environment_variables", out)
    doc.pop("environment_variables", None)
    for name, value in (env or {}).items():
        if not isinstance(name, str) or not name or "=" in name:
            out.problems.append(f"environment_variables: {name!r} is not a variable name")
        elif value is None or isinstance(value, dict | list):
            out.problems.append(f"environment_variables.{name}: expected a string or number")
        else:
            out.environment[name] = str(value).lower() if isinstance(value, bool) else str(value)


def _litellm_settings(doc: dict[str, Any], out: Translation) -> None:
    settings = _section(doc, "litellm_settings", out)
    doc.pop("litellm_settings", None)
    for key, value in (settings or {}).items():
        if key in LITELLM_SETTINGS_MOVED:
            section, target = LITELLM_SETTINGS_MOVED[key]
            dest = doc.setdefault(section, {})
            if isinstance(dest, dict):
                dest.setdefault(target, value)
        elif key == "drop_params":
            _drop_params(doc, value, out)
        else:
            out.warnings.append(f"litellm_settings.{key}: no meaning in RouteIQ; ignored")


def _drop_params(doc: dict[str, Any], value: object, out: Translation) -> None:
    """``drop_params`` becomes each deployment's own (litellm reads it per call); a
    deployment's ``litellm_params.drop_params`` wins."""
    if not isinstance(value, bool):
        out.problems.append("litellm_settings.drop_params: expected true or false")
        return
    for entry in doc.get("model_list") or []:
        params = entry.get("litellm_params") if isinstance(entry, dict) else None
        if isinstance(params, dict):
            params.setdefault("drop_params", value)


def _router_settings(doc: dict[str, Any], out: Translation) -> None:
    rs = _section(doc, "router_settings", out)
    if rs is None:
        return
    if "cooldown_time" in rs:
        if "cooldown_time_s" in rs:
            out.problems.append("router_settings: cooldown_time and cooldown_time_s both set (the same setting)")
        else:
            rs["cooldown_time_s"] = rs.pop("cooldown_time")
    if "timeout" in rs:  # LiteLLM's default request timeout; litellm_settings.request_timeout is read first
        general = doc.setdefault("general_settings", {})
        value = rs.pop("timeout")
        if isinstance(general, dict):
            general.setdefault("request_timeout_s", value)
    for key in sorted(ROUTER_SETTINGS_IGNORED & rs.keys()):
        del rs[key]
        out.warnings.append(f"router_settings.{key}: no meaning in RouteIQ; ignored")


def _general_settings(doc: dict[str, Any], out: Translation) -> None:
    gs = _section(doc, "general_settings", out)
    for key in sorted(GENERAL_SETTINGS_IGNORED & (gs or {}).keys()):
        del gs[key]  # type: ignore[union-attr]
        out.warnings.append(f"general_settings.{key}: no meaning in RouteIQ; ignored")


def _model_list(doc: dict[str, Any], out: Translation) -> None:
    """A deployment's ``rpm``/``tpm`` may sit at the entry's top level (LiteLLM reads both)."""
    entries = doc.get("model_list")
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict) or not isinstance(params := entry.get("litellm_params"), dict):
            continue
        for key in ("rpm", "tpm"):
            if key in entry:
                if key in params:
                    out.problems.append(f"model_list[{i}]: {key} set both in the entry and in litellm_params")
                params.setdefault(key, entry.pop(key))
