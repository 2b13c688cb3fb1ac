"""What a client's body may contribute to a provider call, per endpoint and transport.

A request body must never steer the gateway's own connections: where the request goes,
with which credentials, headers, TLS settings, retries or fallbacks. Those come from the
config only.

- **litellm transport**: ``litellm.acompletion`` & co. take connection settings as
  keyword arguments (``api_base``, ``base_url`` — which wins even over a configured
  ``api_base`` —, ``api_key``, ``headers``, ``extra_headers``, ``ssl_verify``,
  ``custom_llm_provider``, ``mock_response``, ``fallbacks``, ``model_list``...). So its
  arguments are built from an explicit **allowlist** of OpenAI request parameters for
  each endpoint (``LITELLM_PARAMS``); anything else in the body is dropped.
- **native pass-through**: the URL, the ``authorization`` header and every other header
  come from config; the body is sent as JSON data. OpenAI-compatible servers read their
  extensions from the body (vLLM's ``top_k``, ``guided_json``, ``min_tokens``...), so the
  body is forwarded **minus** RouteIQ's own field and the connection, credential and
  routing keys (``CONNECTION_KEYS``) that an upstream which is itself a proxy (LiteLLM's
  client-side credentials) could honour.
"""

from __future__ import annotations

from typing import Any

from app.providers.base import Endpoint

_SAMPLING = frozenset({
    "model", "stream", "stream_options", "max_tokens", "temperature", "top_p", "n", "stop", "user", "seed",
    "presence_penalty", "frequency_penalty", "logit_bias", "logprobs",
})
LITELLM_PARAMS: dict[Endpoint, frozenset[str]] = {
    "chat": _SAMPLING | {
        "messages", "max_completion_tokens", "top_logprobs", "response_format", "tools", "tool_choice",
        "parallel_tool_calls", "functions", "function_call", "modalities", "audio", "prediction",
        "reasoning_effort", "web_search_options", "top_k",
    },
    "completions": _SAMPLING | {"prompt", "suffix", "echo", "best_of", "top_k"},
    "embeddings": frozenset({"model", "input", "encoding_format", "dimensions", "user"}),
}
"""OpenAI request parameters litellm receives from a client body (plus ``top_k``, which most
non-OpenAI providers take and litellm maps); ``model`` and the input are set by the client."""

CONNECTION_KEYS = frozenset({
    "routeiq", "api_base", "base_url", "api_key", "api_version", "organization", "headers", "extra_headers",
    "extra_body", "extra_query", "timeout", "request_timeout", "num_retries", "max_retries", "ssl_verify",
    "verify", "custom_llm_provider", "deployment_id", "model_list", "fallbacks", "context_window_fallbacks",
    "content_policy_fallbacks", "mock_response", "mock_tool_calls", "litellm_metadata", "litellm_logging_obj",
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region_name", "vertex_project",
    "vertex_location", "vertex_credentials", "azure_ad_token", "client", "proxy", "proxies",
})
"""Body keys never forwarded by any transport: RouteIQ's own, and connection, credential or
routing settings (they come from config)."""


_SET_BY_CLIENT = frozenset({"model", "messages", "prompt", "input", "stream", "stream_options"})


def litellm_arguments(endpoint: Endpoint, body: dict[str, Any]) -> dict[str, Any]:
    """The allowlisted parameters of ``body``, less those the client passes itself (the
    model and input, the stream flag and its usage chunk)."""
    allowed = LITELLM_PARAMS[endpoint]
    return {k: v for k, v in body.items() if k in allowed and k not in _SET_BY_CLIENT}


def native_body(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without RouteIQ's field and the connection keys (provider extensions pass)."""
    return {k: v for k, v in body.items() if k not in CONNECTION_KEYS}
