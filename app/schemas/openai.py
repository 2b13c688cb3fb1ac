"""Pydantic models of OpenAI's request bodies, for validation only.

Handlers validate the parsed JSON with these models, then forward the original dict
(never ``model_dump``: re-serialising costs CPU on the hot path). Unknown fields are
allowed and passed through to the provider, as LiteLLM does, so provider-specific
parameters (``top_k``, ``repetition_penalty``...) keep working.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None


class StreamOptions(_Open):
    include_usage: bool = False


class RouteIQOptions(BaseModel):
    """RouteIQ's own request extension (body field ``routeiq``)."""

    model_config = ConfigDict(extra="forbid")

    lam: float | None = Field(None, alias="lambda", ge=0, description="Willingness to pay.")


class _Sampling(_Open):
    model: str = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=128)
    stop: str | list[str] | None = None
    user: str | None = None
    routeiq: RouteIQOptions | None = None


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    tools: list[dict[str, Any]] | None = None
    response_format: dict[str, Any] | None = None


class CompletionRequest(_Sampling):
    prompt: str | list[str] | list[int] | list[list[int]]


class EmbeddingRequest(_Open):
    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None
