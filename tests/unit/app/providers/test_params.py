"""What a client's body contributes to a provider call, per transport."""

from __future__ import annotations

from app.providers.params import CONNECTION_KEYS, LITELLM_PARAMS, litellm_arguments, native_body

STEER = {"api_base": "http://169.254.169.254", "base_url": "http://evil", "api_key": "sk-x", "headers": {},
         "extra_headers": {}, "mock_response": "hi", "custom_llm_provider": "openai", "model_list": [],
         "fallbacks": [], "ssl_verify": False, "timeout": 1, "num_retries": 9, "routeiq": {"lambda": 1}}


def test_litellm_gets_only_allowlisted_openai_parameters() -> None:
    body = {"model": "m", "messages": [], "stream": True, "temperature": 0.2, "tools": [], "top_k": 2,
            "unknown_thing": 1, **STEER}
    assert litellm_arguments("chat", body) == {"temperature": 0.2, "tools": [], "top_k": 2}
    assert litellm_arguments("embeddings", {"input": "x", "dimensions": 8, "temperature": 1, **STEER}) == {
        "dimensions": 8}


def test_native_forwards_extensions_but_no_connection_key() -> None:
    body = {"model": "m", "messages": [], "top_k": 2, "guided_json": {}, **STEER}
    assert native_body(body) == {"model": "m", "messages": [], "top_k": 2, "guided_json": {}}


def test_no_connection_key_is_ever_allowlisted() -> None:
    for allowed in LITELLM_PARAMS.values():
        assert not allowed & CONNECTION_KEYS
