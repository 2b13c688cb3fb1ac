"""Calling providers: the ``ProviderClient`` protocol and its implementations.

``openai_native`` forwards OpenAI-compatible upstreams over one pooled aiohttp session
(raw SSE bytes, no per-chunk parsing); ``litellm_client`` calls any provider through
the litellm SDK. ``caller.ProviderCaller`` picks one per model entry and adds retries
and timeouts; it is what the provider-call deployment wraps.
"""
